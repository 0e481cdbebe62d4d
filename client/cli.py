"""The `laneway` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import NoReturn

from client.cli_jobs import add_job_commands
from laneway.settings import SettingsError, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="laneway", description="Run AI product jobs as Temporal durable workflows."
    )
    parser.add_argument("--version", action="version", version=f"laneway {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    dev = commands.add_parser(
        "dev",
        help="run the local stack: Temporal dev server + Web UI, OpenAI emulator, worker",
    )
    dev.add_argument(
        "--no-emulator",
        action="store_true",
        help="point the worker at OPENAI_BASE_URL / OpenAI itself instead of the emulator",
    )
    commands.add_parser("worker", help="run a worker against the configured Temporal server")
    commands.add_parser(
        "api", help="serve the HTTP API and the OpenAI webhook receiver on LANEWAY_API_ADDRESS"
    )
    commands.add_parser(
        "demo",
        help="run a reviewed background job and a batch job end to end on a throwaway stack",
    )
    add_job_commands(commands)
    return parser


def _version() -> str:
    try:
        return metadata.version("laneway")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "(version unknown: not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    if not argv:  # bare `laneway`: what it can do, rather than a usage error
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except SettingsError as exc:  # at start, or a tokens file read later: one line, exit 2
        print(f"laneway {args.command}: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.command in ("api", "dev", "demo"):
        settings.tokens()  # a bad LANEWAY_API_TOKENS_FILE stops them now, not a child later
    if getattr(args, "handler", None) is not None:  # jobs, submit, results and the actions
        from client.cli_jobs import run

        return run(args, settings)
    if args.command == "dev":
        from dev.stack import run_dev_stack

        return run_dev_stack(settings, use_emulator=not args.no_emulator)
    if args.command == "api":
        from client.http_api import serve

        return serve(settings)
    if args.command == "demo":
        from dev.demo import run_demo

        return run_demo(settings)
    from workers.main import main as worker_main

    return worker_main()


def entry() -> NoReturn:
    """The `laneway` executable: `main`, then an exit that skips interpreter teardown.

    The Temporal client's Rust runtime keeps threads that can call into Python while the
    interpreter finalizes, which aborts a short-lived process now and then (SIGABRT after
    the command's work is done; temporalio/sdk-python#300). Everything is flushed first.
    """
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
