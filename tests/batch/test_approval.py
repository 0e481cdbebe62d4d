"""The approval gate in the batch lane: a dear plan before submission, results before delivery."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from emulator.server import EmulatorServer
from laneway.background import Actor, ControlRequest
from laneway.jobs import DeliverToOutbox
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.ledger import Ledger
from tests.batch.conftest import (
    REQUESTER,
    classify_template,
    make_batch_job,
    records,
    start_batch,
    wait_until,
    write_jsonl,
)
from tests.conftest import WorkerFactory, batch_outcome
from workflows.batch_job import BatchJobWorkflow

REVIEWER = Actor(id="rita", workspace="acme", roles=frozenset({"reviewer"}))
SELF = Actor(id=REQUESTER, workspace="acme", roles=frozenset({"reviewer"}))
OUTSIDER = Actor(id="oscar", workspace="globex", roles=frozenset({"reviewer"}))


def _provider_untouched(emulator: EmulatorServer) -> bool:
    counts = emulator.control.stats()["counts"]
    return bool(counts["files"] == 0 and counts["batches"] == 0)


async def test_a_plan_above_the_threshold_waits_for_a_reviewer(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(200)),
        template=classify_template(),
        job_input={"plan_approval_above_usd": Decimal("0.000001")},
    )
    async with laneway_worker(time_skipping_env):
        handle = await start_batch(time_skipping_env, settings, job)
        view = await wait_until(handle, lambda v: v.status == ProductStatus.NEEDS_REVIEW)
        assert view.estimate is not None and view.estimate.cost_batch_usd is not None
        assert view.estimate.cost_standard_usd == view.estimate.cost_batch_usd * 2
        assert view.reason is not None and f"${view.estimate.cost_batch_usd}" in view.reason
        assert "above the workspace's $0.000001" in view.reason
        for refused, words in ((SELF, "requested this job"), (OUTSIDER, "not a reviewer")):
            with pytest.raises(WorkflowUpdateFailedError) as error:
                await handle.execute_update(
                    BatchJobWorkflow.approve, ControlRequest(actor=refused, note="go")
                )
            assert words in str(error.value.cause)
        await time_skipping_env.sleep(3600)  # an hour in review: still nothing sent
        assert _provider_untouched(emulator)
        await handle.execute_update(
            BatchJobWorkflow.approve, ControlRequest(actor=REVIEWER, note="worth it")
        )
        outcome = await batch_outcome(handle)
    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    assert emulator.control.stats()["counts"]["batches"] == 1
    events = Ledger.from_url(settings.ledger_url).list_events(job.job_id)
    approvals = [e for e in events if e.kind == "approved"]
    assert [(e.actor, e.note) for e in approvals] == [("rita", "plan: worth it")]


async def test_a_rejected_plan_never_reaches_the_provider(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(50)),
        template=classify_template(),
        job_input={"plan_approval_above_usd": Decimal("0")},
    )
    async with laneway_worker(time_skipping_env):
        handle = await start_batch(time_skipping_env, settings, job)
        await wait_until(handle, lambda v: v.status == ProductStatus.NEEDS_REVIEW)
        await handle.execute_update(
            BatchJobWorkflow.reject, ControlRequest(actor=REVIEWER, note="too dear")
        )
        outcome = await batch_outcome(handle)
    assert outcome.status == ProductStatus.CANCELED
    assert outcome.reason == "plan rejected by rita: too dear"
    assert _provider_untouched(emulator)


async def test_results_reviewed_then_delivered_once(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    outbox = settings.outbox_path / "reviewed"
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(60)),
        template=classify_template(),
        review_policy="required",
        side_effect=DeliverToOutbox(path="reviewed"),
    )
    async with laneway_worker(time_skipping_env):
        handle = await start_batch(time_skipping_env, settings, job)
        view = await wait_until(handle, lambda v: v.status == ProductStatus.NEEDS_REVIEW)
        assert view.records.succeeded == 60 and not outbox.exists()
        assert view.allowed_actions == ["approve", "reject", "cancel", "escalate"]
        done = await handle.execute_update(
            BatchJobWorkflow.approve, ControlRequest(actor=REVIEWER, note="ship it")
        )
        outcome = await batch_outcome(handle)
    assert done.status == ProductStatus.COMPLETED
    assert outcome.side_effect_ran and "results delivered" in (outcome.reason or "")
    names = sorted(path.name for path in outbox.iterdir())
    assert names == [
        f"{job.job_id}.{kind}" for kind in ("errors.jsonl", "report.json", "results.jsonl")
    ]
    delivered = (outbox / f"{job.job_id}.results.jsonl").read_text().splitlines()
    assert [json.loads(line)["custom_id"] for line in delivered] == [f"rec-{n}" for n in range(60)]
    report = json.loads((outbox / f"{job.job_id}.report.json").read_text())
    assert report["records"]["succeeded"] == 60 and report["cost_batch_usd"] is not None
    kinds = [e.kind for e in Ledger.from_url(settings.ledger_url).list_events(job.job_id)]
    assert kinds.count("side_effect_ran") == 1 and kinds.count("approved") == 1
