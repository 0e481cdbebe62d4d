"""Approval gates of the batch lane: the plan before any provider call, the results before
their side effect. Refused decisions change nothing; nothing reaches the provider or the
outbox before a reviewer of the job's workspace says so."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from emulator.server import EmulatorServer
from laneway.background import Actor, ControlRequest
from laneway.batch import BatchProgress
from laneway.jobs import DeliverToOutbox
from laneway.pricing import format_usd
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.artifacts import ArtifactStore
from store.ledger import Ledger
from tests.batch.conftest import (
    REQUESTER,
    BatchHandle,
    classify_template,
    make_batch_job,
    records,
    start_batch,
    wait_until,
    write_jsonl,
)
from tests.conftest import WorkerFactory, batch_outcome, batch_view
from workflows.batch_job import BatchJobWorkflow

REVIEWER = Actor(id="rita", workspace="acme", roles=frozenset({"reviewer"}))
SECOND_REVIEWER = Actor(id="rob", workspace="acme", roles=frozenset({"reviewer"}))
REQUESTER_AS_REVIEWER = Actor(id=REQUESTER, workspace="acme", roles=frozenset({"reviewer"}))
OPERATOR = Actor(id="otto", workspace="acme", roles=frozenset({"operator"}))
OUTSIDER = Actor(id="oscar", workspace="globex", roles=frozenset({"reviewer"}))


def _provider_calls(emulator: EmulatorServer) -> int:
    """Every /v1 call the emulator served, and every object created."""
    stats = emulator.control.stats()
    counts = stats["counts"]
    served = sum(n for route, n in stats["requests"].items() if "/v1/" in route)
    return int(served + counts["files"] + counts["batches"])


def _kinds(settings: Settings, job_id: str) -> list[str]:
    return [e.kind for e in Ledger.from_url(settings.ledger_url).list_events(job_id)]


async def _refused(
    handle: BatchHandle, update: str, actor: Actor, words: str
) -> WorkflowUpdateFailedError:
    with pytest.raises(WorkflowUpdateFailedError) as error:
        await handle.execute_update(update, ControlRequest(actor=actor, note="please"))
    assert words in str(error.value.cause), str(error.value.cause)
    return error.value


def _same_gate(before: BatchProgress, after: BatchProgress) -> None:
    assert after.status == before.status == ProductStatus.NEEDS_REVIEW
    assert after.reason == before.reason and after.allowed_actions == before.allowed_actions
    assert after.updated_at == before.updated_at


async def test_plan_gate_holds_until_a_reviewer_of_the_workspace_approves(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(300)),
        template=classify_template(),
        shard_limits={"max_requests": 100},
        job_input={"plan_approval_above_usd": Decimal("0.000010")},
    )
    async with laneway_worker(time_skipping_env):
        handle = await start_batch(time_skipping_env, settings, job)
        gate = await wait_until(handle, lambda v: v.status == ProductStatus.NEEDS_REVIEW)
        estimate = gate.estimate
        assert estimate is not None and estimate.cost_batch_usd is not None
        assert estimate.cost_batch_usd > Decimal("0.000010")
        assert gate.reason == (
            f"the plan (300 records in 3 shards) is estimated at "
            f"{format_usd(estimate.cost_batch_usd)} at batch price, above the workspace's "
            "$0.00001: approve to submit"
        ), "amounts without trailing zeros: the threshold was given as 0.000010"
        assert gate.records.total == 300 and gate.records.pending == 300 and gate.round == 0
        assert gate.allowed_actions == ["approve", "reject", "cancel", "escalate"]

        await _refused(handle, "approve", REQUESTER_AS_REVIEWER, "requested this job")
        await _refused(handle, "reject", REQUESTER_AS_REVIEWER, "requested this job")
        await _refused(handle, "approve", OUTSIDER, "not a reviewer in workspace acme")
        await _refused(handle, "approve", OPERATOR, "not a reviewer in workspace acme")
        await time_skipping_env.sleep(timedelta(hours=2).total_seconds())
        _same_gate(gate, await batch_view(handle))
        assert "approved" not in _kinds(settings, job.job_id)
        assert _provider_calls(emulator) == 0, "nothing reaches the provider before approval"

        approved = await handle.execute_update(
            BatchJobWorkflow.approve, ControlRequest(actor=REVIEWER, note="in budget")
        )
        assert approved.status in (ProductStatus.QUEUED, ProductStatus.RUNNING)
        await _refused(handle, "approve", SECOND_REVIEWER, "already approved")
        outcome = await batch_outcome(handle)

    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    assert outcome.report is not None and outcome.report.records.succeeded == 300
    assert emulator.control.stats()["counts"]["batches"] == 3
    events = Ledger.from_url(settings.ledger_url).list_events(job.job_id)
    assert [(e.kind, e.actor, e.note) for e in events if e.kind == "approved"] == [
        ("approved", "rita", "plan: in budget")
    ]


async def test_a_plan_at_or_under_the_threshold_runs_without_review(
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
        job_input={"plan_approval_above_usd": Decimal("100")},
    )
    async with laneway_worker(time_skipping_env):
        outcome = await batch_outcome(await start_batch(time_skipping_env, settings, job))
    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    statuses = [e.to_status for e in Ledger.from_url(settings.ledger_url).list_events(job.job_id)]
    assert ProductStatus.NEEDS_REVIEW not in statuses


@pytest.mark.parametrize("decision", ["reject", "cancel"])
async def test_a_plan_rejected_or_cancelled_at_the_gate_never_reaches_the_provider(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
    decision: str,
) -> None:
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(80)),
        template=classify_template(),
        job_input={"plan_approval_above_usd": Decimal("0")},
    )
    actor = REVIEWER if decision == "reject" else OPERATOR
    async with laneway_worker(time_skipping_env):
        handle = await start_batch(time_skipping_env, settings, job)
        await wait_until(handle, lambda v: v.status == ProductStatus.NEEDS_REVIEW)
        await _refused(handle, decision, OUTSIDER, "acme")
        ended = await handle.execute_update(
            decision, ControlRequest(actor=actor, note="not this month"), result_type=BatchProgress
        )
        outcome = await batch_outcome(handle)

    expected = {
        "reject": "plan rejected by rita: not this month",
        "cancel": "cancelled by otto: not this month",
    }[decision]
    assert ended.status == outcome.status == ProductStatus.CANCELED
    assert outcome.reason == expected and outcome.report is None
    assert _provider_calls(emulator) == 0
    ledger = Ledger.from_url(settings.ledger_url)
    record = ledger.get_job(job.job_id)
    assert record is not None and record.status == ProductStatus.CANCELED
    assert ledger.list_events(job.job_id)[-1].actor == actor.id


async def test_a_plan_nobody_reviews_expires_after_escalation(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(20)),
        template=classify_template(),
        review_deadline=timedelta(hours=8),
        review_expiry_action="escalate",
        job_input={"plan_approval_above_usd": Decimal("0")},
    )
    async with laneway_worker(time_skipping_env):
        handle = await start_batch(time_skipping_env, settings, job)
        outcome = await batch_outcome(handle)
    described = await handle.describe()
    assert described.close_time is not None
    took = described.close_time - described.start_time
    assert outcome.status == ProductStatus.EXPIRED
    assert outcome.reason == "nobody reviewed the plan before the deadline"
    assert timedelta(hours=16) <= took < timedelta(hours=17), "escalated, then one more window"
    kinds = _kinds(settings, job.job_id)
    assert kinds.count("escalated") == 1 and "approved" not in kinds
    assert _provider_calls(emulator) == 0


async def test_reviewed_results_are_delivered_to_the_outbox_exactly_once(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    outbox = settings.outbox_path / "reviewed"
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(120)),
        template=classify_template(),
        shard_limits={"max_requests": 50},
        review_policy="required",
        side_effect=DeliverToOutbox(path="reviewed"),
    )
    async with laneway_worker(time_skipping_env):
        handle = await start_batch(time_skipping_env, settings, job)
        gate = await wait_until(handle, lambda v: v.status == ProductStatus.NEEDS_REVIEW)
        assert gate.reason == "results ready: waiting for a reviewer"
        assert gate.records.succeeded == 120 and gate.cost_usd is not None
        await _refused(handle, "approve", REQUESTER_AS_REVIEWER, "requested this job")
        await _refused(handle, "approve", OUTSIDER, "not a reviewer in workspace acme")
        await time_skipping_env.sleep(timedelta(hours=1).total_seconds())
        _same_gate(gate, await batch_view(handle))
        assert not outbox.exists(), "nothing delivered before approval"

        done = await handle.execute_update(
            BatchJobWorkflow.approve, ControlRequest(actor=REVIEWER, note="ship it")
        )
        outcome = await batch_outcome(handle)

    assert done.status == ProductStatus.COMPLETED
    assert outcome.status == ProductStatus.COMPLETED and outcome.side_effect_ran
    assert outcome.reason is not None and outcome.reason.endswith("results delivered")
    report = outcome.report
    assert report is not None
    names = sorted(path.name for path in outbox.iterdir())
    assert names == [
        f"{job.job_id}.{kind}" for kind in ("errors.jsonl", "report.json", "results.jsonl")
    ], "three files, no partial or duplicate copies"
    store = ArtifactStore(settings.artifacts_path)
    for kind, ref in (
        ("results.jsonl", report.results),
        ("errors.jsonl", report.errors),
        ("report.json", report.report),
    ):
        assert (outbox / f"{job.job_id}.{kind}").read_bytes() == store.read_bytes(ref)
    delivered = (outbox / f"{job.job_id}.results.jsonl").read_text().splitlines()
    assert [json.loads(line)["custom_id"] for line in delivered] == [f"rec-{n}" for n in range(120)]
    ledger = Ledger.from_url(settings.ledger_url)
    kinds = _kinds(settings, job.job_id)
    assert kinds.count("side_effect_ran") == 1 and kinds.count("approved") == 1
    side_effect = ledger.get_side_effect(job.job_id)
    assert side_effect is not None and side_effect.outcome == "delivered"


async def test_rejected_results_are_kept_and_never_delivered(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    outbox = settings.outbox_path / "reviewed"
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(40)),
        template=classify_template(),
        review_policy="required",
        side_effect=DeliverToOutbox(path="reviewed"),
    )
    async with laneway_worker(time_skipping_env):
        handle = await start_batch(time_skipping_env, settings, job)
        await wait_until(handle, lambda v: v.status == ProductStatus.NEEDS_REVIEW)
        await handle.execute_update(
            BatchJobWorkflow.reject, ControlRequest(actor=REVIEWER, note="wrong labels")
        )
        outcome = await batch_outcome(handle)

    assert outcome.status == ProductStatus.CANCELED and not outcome.side_effect_ran
    assert outcome.reason is not None
    assert outcome.reason.startswith("results rejected by rita: wrong labels (40 of 40 succeeded")
    assert outcome.report is not None, "the results stay readable"
    store = ArtifactStore(settings.artifacts_path)
    assert len(store.read_bytes(outcome.report.results).splitlines()) == 40
    assert not outbox.exists()
    ledger = Ledger.from_url(settings.ledger_url)
    assert ledger.get_side_effect(job.job_id) is None
    assert "side_effect_ran" not in _kinds(settings, job.job_id)
