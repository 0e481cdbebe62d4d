"""Fixtures for the `laneway` command: run `main()` in-process against the dev server.

The CLI reads its settings from the environment, so `cli_env` sets the variables that make
them match the test's `settings` fixture (task queue, data directory, emulator, tokens).
`main()` calls `asyncio.run`, so it runs in a thread while the worker runs in the test's loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
import structlog
from temporalio.testing import WorkflowEnvironment

from client.cli import main
from client.jobs import LanewayClient
from laneway.settings import Settings
from tests.conftest import WorkerFactory
from tests.payload_keys import TEST_PAYLOAD_ENV

ALICE = "tok-alice"  # requester, no roles
ALICE_AS_REVIEWER = "tok-alice-reviewer"  # the same person holding a reviewer token
RITA = "tok-rita"  # reviewer
TOKENS = {
    ALICE: {"actor": "alice", "workspace": "acme", "roles": []},
    ALICE_AS_REVIEWER: {"actor": "alice", "workspace": "acme", "roles": ["reviewer"]},
    RITA: {"actor": "rita", "workspace": "acme", "roles": ["reviewer"]},
}
UNREACHABLE = "127.0.0.1:1"


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> object:
        try:
            return json.loads(self.out)
        except json.JSONDecodeError as error:
            raise AssertionError(f"not JSON ({error}):\n{self.out}\n{self.err}") from None


class Cli(Protocol):
    async def __call__(self, *argv: str) -> Ran: ...


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    dev_server_env: WorkflowEnvironment,
    tmp_path: Path,
) -> None:
    """The environment a shell would give `laneway`, matching `settings`; nothing else."""
    for name in list(os.environ):
        if name.startswith(("LANEWAY_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env file
    variables = {
        "LANEWAY_TEMPORAL_ADDRESS": dev_server_env.client.service_client.config.target_host,
        "LANEWAY_TASK_QUEUE": settings.task_queue,
        "LANEWAY_DATA_DIR": str(settings.data_dir),
        "OPENAI_BASE_URL": str(settings.openai_base_url),
        "OPENAI_API_KEY": str(settings.openai_api_key),
        "LANEWAY_API_TOKENS": json.dumps(TOKENS),
        **TEST_PAYLOAD_ENV,
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def cli(cli_env: None, capsys: pytest.CaptureFixture[str]) -> Cli:
    """`await cli("jobs", "list")`: run `laneway jobs list` and capture its exit code and output."""

    async def run(*argv: str) -> Ran:
        capsys.readouterr()  # only this command's output
        code = await asyncio.to_thread(main, list(argv))
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


@pytest.fixture
async def worker(
    dev_server_env: WorkflowEnvironment, laneway_worker: WorkerFactory
) -> AsyncIterator[None]:
    # In-process, the worker's logs (structlog prints to stdout by default) would mix into the
    # output under test; a real `laneway` runs apart from the worker. Send them to the real
    # stderr (pytest still shows them for a failed test).
    before = structlog.get_config()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.__stderr__))
    try:
        async with laneway_worker(dev_server_env):
            yield
    finally:
        structlog.configure(**before)


@pytest.fixture
def laneway(dev_server_env: WorkflowEnvironment, settings: Settings) -> Iterator[LanewayClient]:
    """The Python client, for waiting on jobs the way a test needs (not what is under test)."""
    client = LanewayClient(dev_server_env.client, settings)
    yield client
    client.close()
