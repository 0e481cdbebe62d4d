"""Ledger fixtures, parametrised over database URLs.

SQLite (a fresh file per test) always runs. PostgreSQL runs too when LANEWAY_TEST_POSTGRES_URL
is set, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/laneway_test; when it is not set
the PostgreSQL parameter is not generated at all (nothing is skipped). Each PostgreSQL test
gets its own schema, dropped afterwards, so the database named in the URL is left as found.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from store.ledger import Ledger, upgrade_to_head
from store.ledger.engine import create_ledger_engine

POSTGRES_URL_VARIABLE = "LANEWAY_TEST_POSTGRES_URL"
BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get(POSTGRES_URL_VARIABLE) else [])


class TickingClock:
    """A clock that moves one second per reading, so every write has a distinct time."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no tables) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'ledger.db'}"
        return
    yield from _postgres_schema(os.environ[POSTGRES_URL_VARIABLE])


def _postgres_schema(base_url: str) -> Iterator[str]:
    schema = f"ledger_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


@pytest.fixture
def ledger(database_url: str, clock: TickingClock) -> Iterator[Ledger]:
    upgrade_to_head(database_url)
    engine = create_ledger_engine(database_url)
    yield Ledger(engine, clock=clock)
    engine.dispose()
