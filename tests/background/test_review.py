"""The approval gate: who may decide, what a refusal leaves behind, and the review deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.testing import WorkflowEnvironment

from emulator.server import EmulatorServer
from laneway.background import Actor, BackgroundJobInput, JobOutcome
from laneway.jobs import DeliverToOutbox, ReviewExpiryAction, ReviewPolicy
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.ledger import Ledger
from tests.background.conftest import (
    OUTSIDER,
    REQUESTER,
    REVIEWER,
    WORKSPACE,
    control,
    job_fault,
    start_job,
    wait_for_status,
)
from tests.conftest import WorkerFactory, job_outcome, job_view
from workflows.background_job import BackgroundJobWorkflow

Handle = WorkflowHandle[BackgroundJobWorkflow, JobOutcome]


@pytest.fixture
async def in_review(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    make_job: Callable[..., BackgroundJobInput],
    tmp_path: Path,
) -> AsyncIterator[Handle]:
    """A job waiting for review on a real dev server, whose rejected Updates leave no trace
    in history (the time-skipping test server records a workflow task for them)."""
    job = make_job(
        review_policy=ReviewPolicy.REQUIRED,
        side_effect=DeliverToOutbox(path="reviewed"),
    )
    async with laneway_worker(dev_server_env):
        handle = await start_job(dev_server_env, settings, job)
        await wait_for_status(handle, "needs_review")
        yield handle


async def history_length(handle: Handle) -> int:
    """The number of events once the workflow has gone quiet (nothing left to record)."""
    length = len((await handle.fetch_history()).events)
    while True:
        await asyncio.sleep(0.2)
        again = len((await handle.fetch_history()).events)
        if again == length:
            return length
        length = again


async def test_reject_ends_the_job_with_the_reviewers_note(
    in_review: Handle, settings: Settings, tmp_path: Path
) -> None:
    view = await in_review.execute_update(
        BackgroundJobWorkflow.reject, control(REVIEWER, "sources are too thin")
    )
    assert view.status == ProductStatus.CANCELED
    outcome = await job_outcome(in_review)
    assert outcome.reason == "rejected by rita: sources are too thin"
    assert not outcome.side_effect_ran
    assert not (settings.outbox_path / "reviewed").exists()
    events = Ledger.from_url(settings.ledger_url).list_events(in_review.id)
    assert events[-1].actor == "rita"
    assert events[-1].to_status == ProductStatus.CANCELED


@pytest.mark.parametrize(
    ("actor", "refusal"),
    [
        (
            Actor(id=REQUESTER, workspace=WORKSPACE, roles=frozenset({"reviewer"})),
            "alice requested this job and cannot approve it",
        ),
        (OUTSIDER, "oscar is not a reviewer in workspace acme"),
        (
            Actor(id="olga", workspace=WORKSPACE, roles=frozenset({"operator"})),
            "olga is not a reviewer in workspace acme",
        ),
    ],
)
async def test_validator_refuses_and_history_is_unchanged(
    in_review: Handle, actor: Actor, refusal: str
) -> None:
    before = await history_length(in_review)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await in_review.execute_update(BackgroundJobWorkflow.approve, control(actor))
    assert refusal in str(refused.value.cause)
    assert await history_length(in_review) == before
    assert (await job_view(in_review)).status == "needs_review"


async def test_second_approval_is_refused(in_review: Handle) -> None:
    await in_review.execute_update(BackgroundJobWorkflow.approve, control(REVIEWER))
    outcome = await job_outcome(in_review)
    before = await history_length(in_review)
    second = Actor(id="rex", workspace=WORKSPACE, roles=frozenset({"reviewer"}))
    with pytest.raises(Exception) as refused:
        await in_review.execute_update(BackgroundJobWorkflow.approve, control(second))
    assert "approve" in str(refused.value) or "completed" in str(refused.value)
    assert outcome.side_effect_ran
    assert await history_length(in_review) == before


async def test_second_approval_while_the_first_runs_is_refused(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    make_job: Callable[..., BackgroundJobInput],
) -> None:
    job = make_job(review_policy=ReviewPolicy.REQUIRED)
    async with laneway_worker(time_skipping_env):
        handle = await start_job(time_skipping_env, settings, job)
        await wait_for_status(handle, "needs_review")
        first = await handle.start_update(
            BackgroundJobWorkflow.approve,
            control(REVIEWER),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        )
        second = Actor(id="rex", workspace=WORKSPACE, roles=frozenset({"reviewer"}))
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(BackgroundJobWorkflow.approve, control(second))
        assert "already approved" in str(refused.value.cause)
        await first.result()
        assert (await job_outcome(handle)).status == ProductStatus.COMPLETED


@pytest.mark.parametrize(
    ("expiry", "escalated"),
    [(ReviewExpiryAction.EXPIRE, False), (ReviewExpiryAction.ESCALATE, True)],
)
async def test_three_day_review_window_passes_in_under_a_second(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    make_job: Callable[..., BackgroundJobInput],
    expiry: ReviewExpiryAction,
    escalated: bool,
) -> None:
    job = make_job(
        review_policy=ReviewPolicy.REQUIRED,
        review_deadline=timedelta(days=3),
        review_expiry_action=expiry,
    )
    async with laneway_worker(time_skipping_env):
        handle = await start_job(time_skipping_env, settings, job)
        await wait_for_status(handle, "needs_review")
        before = await time_skipping_env.get_current_time()
        started = time.monotonic()
        outcome = await job_outcome(handle)
        elapsed = time.monotonic() - started
        after = await time_skipping_env.get_current_time()
    assert outcome.status == ProductStatus.EXPIRED
    assert outcome.reason == "nobody reviewed the job before the deadline"
    assert after - before >= timedelta(days=3)
    assert elapsed < 1.0
    kinds = [e.kind for e in Ledger.from_url(settings.ledger_url).list_events(job.job_id)]
    assert ("escalated" in kinds) is escalated


async def test_approval_in_the_wrong_state_is_refused(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    make_job: Callable[..., BackgroundJobInput],
) -> None:
    job = make_job(review_policy=ReviewPolicy.REQUIRED)
    emulator.control.add_fault(job_fault("response_stick", job))
    async with laneway_worker(dev_server_env):
        handle = await start_job(dev_server_env, settings, job)
        await wait_for_status(handle, "running")
        before = await history_length(handle)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(BackgroundJobWorkflow.approve, control(REVIEWER))
        assert "cannot approve a job that is running; allowed now: cancel" in str(
            refused.value.cause
        )
        assert await history_length(handle) == before
        await handle.terminate("test over")
