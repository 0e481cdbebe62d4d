"""Background jobs that end well: auto policy, review then approve, reject."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from emulator.server import EmulatorServer
from laneway.background import BackgroundJobInput
from laneway.jobs import DeliverToOutbox, ReviewPolicy
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.ledger import Ledger
from tests.background.conftest import REVIEWER, control, start_job
from tests.conftest import WorkerFactory, job_outcome, job_view
from workflows.background_job import BackgroundJobWorkflow


async def test_auto_policy_completes_with_result_and_cost(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    make_job: Callable[..., BackgroundJobInput],
) -> None:
    job = make_job("Summarise: the launch went great and customers love it.")
    async with laneway_worker(time_skipping_env):
        outcome = await job_outcome(await start_job(time_skipping_env, settings, job))
    assert outcome.status == ProductStatus.COMPLETED
    assert outcome.attempts == 1
    assert outcome.result is not None
    assert outcome.result.usage.output_tokens > 0
    assert outcome.result.cost_usd is not None and outcome.result.cost_usd > 0
    ledger = Ledger.from_url(settings.ledger_url)
    stored = ledger.get_result(job.job_id)
    assert stored is not None and "launch went great" in (stored.inline_output or "")
    statuses = [e.to_status for e in ledger.list_events(job.job_id) if e.to_status]
    assert statuses[-1] == ProductStatus.COMPLETED
    assert emulator.control.stats()["counts"]["responses"] == 1


async def test_review_then_approve_runs_side_effect_once(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    make_job: Callable[..., BackgroundJobInput],
    tmp_path: Path,
) -> None:
    outbox = settings.outbox_path / "reviewed"
    job = make_job(
        "Brief on onboarding: it is slow and confusing.",
        review_policy=ReviewPolicy.REQUIRED,
        side_effect=DeliverToOutbox(path="reviewed"),
    )
    client = time_skipping_env.client
    async with laneway_worker(time_skipping_env):
        handle = await client.start_workflow(
            BackgroundJobWorkflow.run, job, id=job.job_id, task_queue=settings.task_queue
        )
        while (await job_view(handle)).status != "needs_review":
            await time_skipping_env.sleep(1)
        view = await handle.execute_update(BackgroundJobWorkflow.approve, control(REVIEWER, "ok"))
        assert view.status == ProductStatus.COMPLETED
        outcome = await job_outcome(handle)
    assert outcome.side_effect_ran
    delivered = json.loads((outbox / f"{job.job_id}.json").read_text())
    assert "onboarding" in delivered["output"]
    assert list(outbox.iterdir()) == [outbox / f"{job.job_id}.json"]
    ledger = Ledger.from_url(settings.ledger_url)
    kinds = [event.kind for event in ledger.list_events(job.job_id)]
    assert kinds.count("side_effect_ran") == 1
    assert "approved" in kinds
