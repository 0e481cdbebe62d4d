"""Alembic, configured from code: no alembic.ini, the scripts live in ./migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from store.ledger.engine import create_ledger_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any fixed number: concurrent workers starting on one PostgreSQL migrate one at a time.
_MIGRATION_LOCK_ID = 7_340_112


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # The connection is handed over in attributes, so a URL with a password never
    # passes through ConfigParser (which would choke on '%').
    config.attributes["connection"] = connection
    return config


def upgrade_to_head(url: str) -> str:
    """Bring the ledger at `url` to the newest schema; returns that revision."""
    engine = create_ledger_engine(url)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})"))
            command.upgrade(alembic_config(connection), "head")
            return current_revision_of(connection) or ""
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    engine = create_ledger_engine(url)
    try:
        with engine.connect() as connection:
            return current_revision_of(connection)
    finally:
        engine.dispose()


def current_revision_of(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def new_revision(url: str, message: str) -> None:
    """Autogenerate a migration from the difference between tables.py and the database."""
    engine = create_ledger_engine(url)
    try:
        with engine.begin() as connection:
            command.revision(alembic_config(connection), message=message, autogenerate=True)
    finally:
        engine.dispose()
