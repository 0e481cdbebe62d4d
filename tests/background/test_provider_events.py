"""A provider event (the webhook path) ends a long polling wait at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from emulator.server import EmulatorServer
from laneway.background import BackgroundJobInput, PollingPolicy
from laneway.settings import Settings
from laneway.status import ProductStatus
from tests.background.conftest import wait_for_provider, wait_for_status
from tests.conftest import WorkerFactory
from workflows.background_job import BackgroundJobWorkflow


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
        handle = await dev_server_env.client.start_workflow(
            BackgroundJobWorkflow.run, job, id=job.job_id, task_queue=settings.task_queue
        )
        response_id = await wait_for_provider(handle)
        emulator.control.advance_clock(3600)  # the provider finishes; nobody polls for 10 min
        await handle.signal(BackgroundJobWorkflow.provider_event, "resp_of_someone_else")
        await handle.signal(BackgroundJobWorkflow.provider_event, response_id)
        started = time.monotonic()
        outcome = await handle.result()
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
        handle = await dev_server_env.client.start_workflow(
            BackgroundJobWorkflow.run, job, id=job.job_id, task_queue=settings.task_queue
        )
        await wait_for_provider(handle)
        emulator.control.advance_clock(3600)
        view = await wait_for_status(handle, "queued")
        await asyncio.sleep(2)
        assert (await handle.query(BackgroundJobWorkflow.status)).status == view.status
        await handle.terminate("test over")
