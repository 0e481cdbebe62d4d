"""Cancelling a job reaches the provider and is audited with who, why and when."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from openai import AsyncOpenAI
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from laneway.background import BackgroundJobInput
from laneway.jobs import ReviewPolicy
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.ledger import Ledger
from tests.background.conftest import (
    OPERATOR,
    REQUESTER,
    control,
    job_fault,
    start_job,
    wait_for_provider,
    wait_for_status,
)
from tests.conftest import WorkerFactory, job_outcome
from workflows.background_job import BackgroundJobWorkflow


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    # Responses wait in the queue for ~10 real seconds, long enough to cancel one there.
    return EmulatorConfig(speed=600.0, response_queued_seconds=6000.0)


async def provider_status(openai_client: AsyncOpenAI, emulator: EmulatorServer) -> str:
    (response_id,) = emulator.control.stats()["ids"]["responses"]
    return str((await openai_client.responses.retrieve(response_id)).status)


def last_event(settings: Settings, job_id: str) -> tuple[str, str, ProductStatus | None]:
    event = Ledger.from_url(settings.ledger_url).list_events(job_id)[-1]
    assert event.at is not None
    return event.actor, event.note, event.to_status


@pytest.mark.parametrize("stage", ["queued", "running"])
async def test_cancel_before_the_provider_finishes(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    openai_client: AsyncOpenAI,
    make_job: Callable[..., BackgroundJobInput],
    stage: str,
) -> None:
    job = make_job()
    emulator.control.add_fault(job_fault("response_stick", job))
    async with laneway_worker(time_skipping_env):
        handle = await start_job(time_skipping_env, settings, job)
        await wait_for_provider(handle)
        if stage == "running":
            emulator.control.advance_clock(6001)
        await wait_for_status(handle, stage)
        expected = {"queued": "queued", "running": "in_progress"}[stage]
        assert await provider_status(openai_client, emulator) == expected
        view = await handle.execute_update(
            BackgroundJobWorkflow.cancel, control(OPERATOR, "customer withdrew the request")
        )
        outcome = await job_outcome(handle)
    assert view.status == ProductStatus.CANCELED
    assert outcome.reason == "cancelled by otto: customer withdrew the request"
    assert await provider_status(openai_client, emulator) == "cancelled"
    assert last_event(settings, job.job_id) == (
        "otto",
        "cancelled by otto: customer withdrew the request",
        ProductStatus.CANCELED,
    )


async def test_cancel_in_review_by_the_requester(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    openai_client: AsyncOpenAI,
    make_job: Callable[..., BackgroundJobInput],
) -> None:
    job = make_job(review_policy=ReviewPolicy.REQUIRED)
    async with laneway_worker(time_skipping_env):
        handle = await start_job(time_skipping_env, settings, job)
        await wait_for_provider(handle)
        emulator.control.advance_clock(100_000)
        await wait_for_status(handle, "needs_review")
        requester = OPERATOR.model_copy(update={"id": REQUESTER, "roles": frozenset()})
        await handle.execute_update(BackgroundJobWorkflow.cancel, control(requester, "not needed"))
        outcome = await job_outcome(handle)
    assert outcome.status == ProductStatus.CANCELED
    assert outcome.result is not None, "the output is kept"
    # The response had already completed: there was nothing left to stop at the provider.
    assert await provider_status(openai_client, emulator) == "completed"
    assert last_event(settings, job.job_id)[0] == REQUESTER


async def test_temporal_cancellation_reaches_the_provider(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    openai_client: AsyncOpenAI,
    make_job: Callable[..., BackgroundJobInput],
) -> None:
    job = make_job()
    async with laneway_worker(time_skipping_env):
        handle = await start_job(time_skipping_env, settings, job)
        await wait_for_provider(handle)
        await handle.cancel()
        outcome = await job_outcome(handle)
        closed = await handle.describe()
    assert outcome.status == ProductStatus.CANCELED
    assert closed.status == WorkflowExecutionStatus.CANCELED
    assert await provider_status(openai_client, emulator) == "cancelled"
    actor, _, status = last_event(settings, job.job_id)
    assert (actor, status) == ("temporal", ProductStatus.CANCELED)
