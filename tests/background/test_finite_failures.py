"""Every failure is finite: a 5xx on the last calls before a deadline still ends the job in a
product status, with the provider response cancelled and a close status that matches."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from openai import AsyncOpenAI
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from emulator.server import EmulatorServer
from laneway.background import BackgroundJobInput
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.ledger import Ledger
from tests.background.conftest import job_fault, start_job, wait_for_status
from tests.conftest import WorkerFactory, job_outcome


async def test_5xx_on_every_poll_up_to_the_deadline_expires_the_job_and_cancels_the_response(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    openai_client: AsyncOpenAI,
    make_job: Callable[..., BackgroundJobInput],
) -> None:
    job = make_job(provider_deadline=timedelta(hours=2))
    emulator.control.add_fault(job_fault("response_stick", job))
    async with laneway_worker(time_skipping_env):
        handle = await start_job(time_skipping_env, settings, job)
        await wait_for_status(handle, "running")
        # From now on every look at the response fails with a 5xx, the last poll included.
        emulator.control.add_fault(
            {"kind": "http_500", "match": {"method": "GET", "path_prefix": "/v1/responses"}}
        )
        outcome = await asyncio.wait_for(job_outcome(handle), 120)
        closed = await handle.describe()
    emulator.control.clear_faults()
    assert outcome.status == ProductStatus.EXPIRED
    assert outcome.reason == "the provider did not finish within 2h"
    assert closed.status == WorkflowExecutionStatus.FAILED
    (response_id,) = emulator.control.stats()["ids"]["responses"]
    assert (await openai_client.responses.retrieve(response_id)).status == "cancelled"
    record = Ledger.from_url(settings.ledger_url).get_job(job.job_id)
    assert record is not None and record.status == ProductStatus.EXPIRED


async def test_5xx_on_every_call_at_the_deadline_still_ends_the_job_and_says_so(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    make_job: Callable[..., BackgroundJobInput],
) -> None:
    job = make_job(provider_deadline=timedelta(hours=2))
    emulator.control.add_fault(job_fault("response_stick", job))
    async with laneway_worker(time_skipping_env):
        handle = await start_job(time_skipping_env, settings, job)
        await wait_for_status(handle, "running")
        # The provider is down for good: polls and the cancel all get a 503.
        emulator.control.add_fault({"kind": "http_503", "match": {"path_prefix": "/v1/responses"}})
        outcome = await asyncio.wait_for(job_outcome(handle), 180)
        closed = await handle.describe()
    emulator.control.clear_faults()
    assert outcome.status == ProductStatus.EXPIRED
    assert outcome.reason is not None
    assert outcome.reason.startswith("the provider did not finish within 2h")
    assert "could not cancel the provider response" in outcome.reason
    assert closed.status == WorkflowExecutionStatus.FAILED
    record = Ledger.from_url(settings.ledger_url).get_job(job.job_id)
    assert record is not None and record.status == ProductStatus.EXPIRED
