"""Fixtures for lifecycle tests: one emulator, worker and client shared by a test module.

A walk through a job's states starts many short jobs; sharing the worker (and the emulator it
talks to) across a module keeps each test to the job it needs. Jobs are told apart by their
ids, and emulator faults are aimed at one job each, so sharing is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from client.jobs import LanewayClient
from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from laneway.background import Actor, PollingPolicy
from laneway.settings import Settings
from tests.client.conftest import REQUESTER, WORKSPACE
from tests.conftest import TEST_API_KEY
from tests.payload_keys import keyed_settings
from workers.main import build_worker

# Allowed to take every action on the job: a reviewer and operator of its workspace who did
# not request it. Whatever such an actor is refused, the job refused, not the permissions.
ACTOR = Actor(id="rita", workspace=WORKSPACE, roles=frozenset({"reviewer", "operator"}))
# Look at the provider often: jobs reach their states in a fraction of a second.
FAST_POLLING = PollingPolicy(
    first_interval=timedelta(milliseconds=100),
    backoff=1.0,
    max_interval=timedelta(milliseconds=100),
)
WAIT_LIMIT = 30.0

T = TypeVar("T")

__all__ = ["ACTOR", "FAST_POLLING", "REQUESTER", "WORKSPACE", "Laneway", "eventually"]


@dataclass
class Laneway:
    """Laneway on the dev server for a whole test module: a client, its worker, the emulator."""

    env: WorkflowEnvironment
    client: LanewayClient
    settings: Settings
    emulator: EmulatorServer
    files: Path

    async def closed_as(self, job_id: str) -> WorkflowExecutionStatus | None:
        """The Temporal status of the job's workflow (RUNNING while open)."""
        described = await self.client.temporal.get_workflow_handle(job_id).describe()
        return described.status


async def eventually(what: str, look: Callable[[], Awaitable[T]], check: Callable[[T], bool]) -> T:
    """Look until `check` holds for what `look` returns (polling, never a fixed sleep)."""
    deadline = time.monotonic() + WAIT_LIMIT
    seen = await look()
    while not check(seen):
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}; last seen {seen!r}")
        await asyncio.sleep(0.05)
        seen = await look()
    return seen


@pytest.fixture(scope="module")
def module_emulator() -> Iterator[EmulatorServer]:
    """The emulator at the batch tests' speed: a small batch is done in a few real ms."""
    server = EmulatorServer(EmulatorConfig(speed=600.0))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def module_settings(
    module_emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return keyed_settings(
        task_queue=f"laneway-lifecycle-{uuid.uuid4().hex[:8]}",
        data_dir=tmp_path_factory.mktemp("lifecycle") / "var",
        openai_base_url=module_emulator.base_url,
        openai_api_key=TEST_API_KEY,
    )


@pytest.fixture(scope="module")
async def laneway(
    dev_server_env: WorkflowEnvironment,
    module_settings: Settings,
    module_emulator: EmulatorServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Laneway]:
    """A client on the dev server, with Laneway's worker serving the module's task queue.

    Jobs still open when the module ends are terminated, so that none outlives its worker.
    """
    client = LanewayClient(dev_server_env.client, module_settings)
    running = Laneway(
        env=dev_server_env,
        client=client,
        settings=module_settings,
        emulator=module_emulator,
        files=tmp_path_factory.mktemp("inputs"),
    )
    async with build_worker(dev_server_env.client, module_settings):
        yield running
        query = f'TaskQueue = "{module_settings.task_queue}" AND ExecutionStatus = "Running"'
        async for execution in dev_server_env.client.list_workflows(query):
            handle = dev_server_env.client.get_workflow_handle(execution.id)
            with contextlib.suppress(RPCError):  # it closed since it was listed
                await handle.terminate("the lifecycle test module is over")
    client.close()
