"""Provider outcomes other than success each end in the right product status, with a reason."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from openai import AsyncOpenAI
from temporalio.testing import WorkflowEnvironment

from emulator.server import EmulatorServer
from laneway.background import BackgroundJobInput
from laneway.jobs import JobInput, ReviewPolicy
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.ledger import Ledger
from tests.background.conftest import OPERATOR, control, job_fault, start_job, wait_for_status
from tests.conftest import WorkerFactory, job_outcome, job_view
from workflows.background_job import BackgroundJobWorkflow


async def test_failed_response_fails_the_job_and_a_retry_starts_a_new_attempt(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    make_job: Callable[..., BackgroundJobInput],
) -> None:
    job = make_job()
    emulator.control.add_fault(job_fault("response_fail", job, times=1, message="GPU fell over"))
    async with laneway_worker(dev_server_env):
        handle = await start_job(dev_server_env, settings, job)
        failed = await wait_for_status(handle, "failed")
        assert failed.reason is not None and "GPU fell over" in failed.reason
        assert failed.allowed_actions == ["retry", "archive"]
        view = await handle.execute_update(BackgroundJobWorkflow.retry, control(OPERATOR, "again"))
        assert view.status != ProductStatus.FAILED
        outcome = await job_outcome(handle)
        final = await job_view(handle)
    assert outcome.status == ProductStatus.COMPLETED
    assert outcome.attempts == 2
    assert len(final.provider_ids) == 2
    kinds = [e.kind for e in Ledger.from_url(settings.ledger_url).list_events(job.job_id)]
    assert "retried" in kinds


async def test_failed_job_nobody_retries_ends_failed_with_the_providers_reason(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    make_job: Callable[..., BackgroundJobInput],
) -> None:
    job = make_job()
    emulator.control.add_fault(job_fault("response_fail", job, message="model overloaded"))
    async with laneway_worker(time_skipping_env):
        outcome = await job_outcome(await start_job(time_skipping_env, settings, job))
    assert outcome.status == ProductStatus.FAILED
    assert outcome.reason is not None
    assert "the provider failed the response" in outcome.reason
    assert "model overloaded" in outcome.reason


async def test_incomplete_without_review_fails_with_the_cut_off_reason(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    make_job: Callable[..., BackgroundJobInput],
) -> None:
    job = make_job()
    emulator.control.add_fault(job_fault("response_incomplete", job))
    async with laneway_worker(time_skipping_env):
        outcome = await job_outcome(await start_job(time_skipping_env, settings, job))
    assert outcome.status == ProductStatus.FAILED
    assert outcome.reason is not None and "max_output_tokens" in outcome.reason
    assert outcome.result is not None, "the partial output is kept"


async def test_incomplete_goes_to_review_under_on_incomplete_policy(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    make_job: Callable[..., BackgroundJobInput],
) -> None:
    job = make_job(
        input=JobInput(model="gpt-4o-mini", text="A long brief " * 200, max_output_tokens=16),
        review_policy=ReviewPolicy.ON_INCOMPLETE,
    )
    async with laneway_worker(time_skipping_env):
        handle = await start_job(time_skipping_env, settings, job)
        view = await wait_for_status(handle, "needs_review")
        assert view.allowed_actions[:2] == ["approve", "reject"]
        await handle.terminate("test over")


async def test_response_cancelled_outside_laneway_cancels_the_job(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    openai_client: AsyncOpenAI,
    make_job: Callable[..., BackgroundJobInput],
) -> None:
    job = make_job()
    emulator.control.add_fault(job_fault("response_stick", job))
    async with laneway_worker(time_skipping_env):
        handle = await start_job(time_skipping_env, settings, job)
        running = await wait_for_status(handle, "running")
        await openai_client.responses.cancel(running.provider_ids[0])
        outcome = await job_outcome(handle)
    assert outcome.status == ProductStatus.CANCELED
    assert outcome.reason == "the response was cancelled at the provider"


async def test_stuck_response_expires_at_the_provider_deadline_and_is_cancelled(
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
        outcome = await job_outcome(await start_job(time_skipping_env, settings, job))
    assert outcome.status == ProductStatus.EXPIRED
    assert outcome.reason == "the provider did not finish within 2h"
    (response_id,) = emulator.control.stats()["ids"]["responses"]
    response = await openai_client.responses.retrieve(response_id)
    assert response.status == "cancelled"


async def test_archive_closes_a_failed_job_before_its_hold_ends(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    make_job: Callable[..., BackgroundJobInput],
) -> None:
    job = make_job()
    emulator.control.add_fault(job_fault("response_fail", job))
    async with laneway_worker(dev_server_env):
        handle = await start_job(dev_server_env, settings, job)
        await wait_for_status(handle, "failed")
        view = await handle.execute_update(
            BackgroundJobWorkflow.archive, control(OPERATOR, "known outage")
        )
        outcome = await job_outcome(handle)
    assert view.allowed_actions == []
    assert outcome.status == ProductStatus.FAILED
    events = Ledger.from_url(settings.ledger_url).list_events(job.job_id)
    archived = next(event for event in events if event.kind == "archived")
    assert (archived.actor, archived.note) == ("otto", "known outage")
