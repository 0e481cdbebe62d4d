"""Migrations build the schema from nothing, and agree with the ORM tables."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pytest import CaptureFixture
from sqlalchemy import inspect, text

from store.ledger import upgrade_to_head
from store.ledger.__main__ import main
from store.ledger.engine import create_ledger_engine
from store.ledger.migrate import alembic_config, current_revision, head_revision
from store.ledger.tables import Base

LEDGER_TABLES = {
    "jobs",
    "job_events",
    "job_provider_ids",
    "provider_intents",
    "results",
    "side_effects",
}


def test_upgrade_builds_every_table_on_an_empty_database(database_url: str) -> None:
    assert current_revision(database_url) is None
    assert upgrade_to_head(database_url) == head_revision()
    engine = create_ledger_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert tables >= LEDGER_TABLES
    assert current_revision(database_url) == head_revision()


def test_upgrade_twice_is_harmless(database_url: str) -> None:
    first = upgrade_to_head(database_url)
    assert upgrade_to_head(database_url) == first


def test_tables_match_the_migrations(database_url: str) -> None:
    upgrade_to_head(database_url)
    engine = create_ledger_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_downgrade_to_nothing_and_back(database_url: str) -> None:
    upgrade_to_head(database_url)
    engine = create_ledger_engine(database_url)
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "base")
        assert not set(inspect(engine).get_table_names()) & LEDGER_TABLES
    finally:
        engine.dispose()
    assert upgrade_to_head(database_url) == head_revision()


def test_command_line_upgrade_and_current(database_url: str, capsys: CaptureFixture[str]) -> None:
    assert main(["--url", database_url, "upgrade"]) == 0
    assert f"at revision {head_revision()}" in capsys.readouterr().out
    assert main(["--url", database_url, "current"]) == 0
    assert f"revision {head_revision()}, newest {head_revision()}" in capsys.readouterr().out


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/nested/dir/ledger.db"
    upgrade_to_head(url)
    engine = create_ledger_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()
