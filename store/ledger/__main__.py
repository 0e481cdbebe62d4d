"""`python -m store.ledger upgrade|current|revision`: manage the ledger's schema.

The database is LANEWAY_DATABASE_URL (default: a SQLite file in LANEWAY_DATA_DIR), or --url.
"""

from __future__ import annotations

import argparse
import sys

from sqlalchemy import make_url

from laneway.settings import SettingsError, get_settings
from store.ledger.migrate import current_revision, head_revision, new_revision, upgrade_to_head


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m store.ledger", description=__doc__)
    parser.add_argument("--url", help="SQLAlchemy URL of the ledger (default: from settings)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("upgrade", help="create or update the schema to the newest revision")
    commands.add_parser("current", help="print the database's revision and the newest one")
    revision = commands.add_parser("revision", help="autogenerate a migration from tables.py")
    revision.add_argument("-m", "--message", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        url: str = args.url or get_settings().ledger_url
    except SettingsError as error:
        print(f"python -m store.ledger: {error}", file=sys.stderr)
        return 2
    shown = make_url(url).render_as_string(hide_password=True)
    if args.command == "upgrade":
        print(f"ledger {shown} at revision {upgrade_to_head(url)}")
    elif args.command == "current":
        print(f"ledger {shown}: revision {current_revision(url)}, newest {head_revision()}")
    else:
        new_revision(url, args.message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
