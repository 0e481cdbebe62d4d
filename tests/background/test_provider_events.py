"""A provider event (the webhook path) ends a long polling wait at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from laneway.background import BackgroundJobInput, PollingPolicy
from laneway.settings import Settings
from laneway.status import ProductStatus
from tests.background.conftest import start_job, wait_for_provider
from tests.conftest import WorkerFactory, job_outcome, job_view
from workflows.background_job import BackgroundJobWorkflow


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    # Responses run for a minute of real time unless the clock jumps.
    return EmulatorConfig(
        speed=600.0, response_queued_seconds=0, response_in_progress_seconds=36000
    )


async def polling_settled(emulator: EmulatorServer) -> None:
    """The job polled and found nothing new: its next poll is ten minutes away."""
    seen = -1
    for _ in range(100):
        polls = emulator.control.stats()["requests"].get("GET /v1/responses/{id}", 0)
        if polls and polls == seen:
            return
        seen = polls
        await asyncio.sleep(0.3)
    raise AssertionError("the job never settled into its slow poll")


async def test_provider_event_cuts_a_ten_minute_poll_short(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    make_job: Callable[..., BackgroundJobInput],
) -> None:
    slow = PollingPolicy(first_interval=timedelta(minutes=10), max_interval=timedelta(minutes=10))
    job = make_job().model_copy(update={"polling": slow})
    async with laneway_worker(dev_server_env):
        handle = await start_job(dev_server_env, settings, job)
        response_id = await wait_for_provider(handle)
        await polling_settled(emulator)
        emulator.control.advance_clock(
            40_000
        )  # the provider finishes; the next poll is 10 min away
        await handle.signal(BackgroundJobWorkflow.provider_event, "resp_of_someone_else")
        await handle.signal(BackgroundJobWorkflow.provider_event, response_id)
        started = time.monotonic()
        outcome = await job_outcome(handle)
        assert time.monotonic() - started < 5
    assert outcome.status == ProductStatus.COMPLETED


async def test_without_an_event_the_slow_poll_still_waits(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    make_job: Callable[..., BackgroundJobInput],
) -> None:
    slow = PollingPolicy(first_interval=timedelta(minutes=10), max_interval=timedelta(minutes=10))
    job = make_job().model_copy(update={"polling": slow})
    async with laneway_worker(dev_server_env):
        handle = await start_job(dev_server_env, settings, job)
        await wait_for_provider(handle)
        await polling_settled(emulator)
        before = await job_view(handle)
        emulator.control.advance_clock(40_000)
        await asyncio.sleep(2)
        assert (await job_view(handle)).status == before.status
        await handle.terminate("test over")
