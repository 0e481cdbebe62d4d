"""The allowed-actions walk: in every state a job can be in, what it offers is what it takes.

For each state of the background and batch lanes, and each of the six actions:
- an action the job offers (`LanewayClient.status(...).allowed_actions`) is accepted by
  `LanewayClient.act`, on a fresh job brought into that state;
- an action it does not offer is refused (`JobActionRefused`, never `JobActionForbidden`: the
  actor may do everything) with a plain sentence, and the job is left as it was;
- a refusal that says what is allowed instead ("allowed now: ...", "cancel it first", "no
  more actions but archive") names only actions the job offers;
- while the workflow is open, the Temporal Web UI's current details list the same actions;
  once it has closed, the ledger's view of the ended job does.

Besides the states a job rests in, the walk covers two it passes through: a background job
that has been canceled but is still waiting for the provider to cancel its response
("stopping"), and a job ended by its review window ("expired").

Jobs are brought into their states by the real worker against the emulator, with faults aimed
at one job each; checks that leave a job as it was share one job per state. The last test
holds a failed job on the time-skipping server for its whole hold.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateStage
from temporalio.testing import WorkflowEnvironment

from client.jobs import JobActionForbidden, JobActionRefused, LanewayClient
from emulator.server import EmulatorServer
from laneway.background import BackgroundJobInput, ControlRequest
from laneway.batch import BatchJobInput, BatchJobSpec
from laneway.jobs import JobInput, JobSpec, ReviewPolicy
from laneway.lifecycle import JobState
from laneway.settings import Settings
from laneway.status import Action, Lane, ProductStatus
from store.artifacts import ArtifactStore
from store.ledger import Ledger
from tests.conftest import WorkerFactory, job_outcome
from tests.lifecycle.conftest import (
    ACTOR,
    FAST_POLLING,
    REQUESTER,
    WORKSPACE,
    Laneway,
    eventually,
)
from workflows.background_job import BackgroundJobWorkflow
from workflows.batch_job import BatchJobWorkflow

RUNNING = WorkflowExecutionStatus.RUNNING
# Words that give away an exception rather than a sentence meant for a person.
CLASS_NAMES = re.compile(
    r"ApplicationError|ActionNotAllowedNow|ActionForbidden|WorkflowUpdateFailedError|RPCError"
    r"|Traceback|\b[A-Z]\w*(Error|Exception)\b|\b[A-Z][a-z]+[A-Z]\w*"
)
DETAILS_ACTIONS = re.compile(r"allowed actions: (.*)\s*$")

# ---- bringing jobs into their states ------------------------------------------------------------


def _job_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _fault(kind: str, job_id: str, **fields: Any) -> dict[str, Any]:
    """An emulator fault aimed at this job's responses or batches only."""
    match = {"metadata_key": "laneway_job_id", "metadata_value": job_id}
    return {"kind": kind, "match": match, **fields}


async def _status(laneway: Laneway, job_id: str) -> JobState:
    return await laneway.client.status(job_id)


async def _until_status(laneway: Laneway, job_id: str, status: ProductStatus) -> JobState:
    return await eventually(
        f"{job_id} is {status}", lambda: _status(laneway, job_id), lambda s: s.status == status
    )


async def _until_closed(laneway: Laneway, job_id: str) -> None:
    await eventually(
        f"{job_id} is closed", lambda: laneway.closed_as(job_id), lambda status: status != RUNNING
    )


async def _background(
    laneway: Laneway,
    *,
    fault: str | None = None,
    review: ReviewPolicy = ReviewPolicy.AUTO,
    **spec: Any,
) -> str:
    job = BackgroundJobInput(
        job_id=_job_id("job-walk"),
        spec=JobSpec(
            job_type="research_brief",
            workspace=WORKSPACE,
            requested_by=REQUESTER,
            input=JobInput(model="gpt-4o-mini", text="Brief on churn: support is great."),
            review_policy=review,
            **spec,
        ),
        polling=FAST_POLLING,
    )
    if fault is not None:
        laneway.emulator.control.add_fault(_fault(fault, job.job_id, message="GPU fell over"))
    await laneway.env.client.start_workflow(
        BackgroundJobWorkflow.run,
        job,
        id=job.job_id,
        task_queue=laneway.settings.task_queue,
        static_summary="research_brief in acme, requested by alice",
    )
    return job.job_id


async def _batch(
    laneway: Laneway,
    *,
    lines: Iterable[str] | None = None,
    faults: Iterable[tuple[str, dict[str, Any]]] = (),
    plan_approval_above_usd: Decimal | None = None,
    **spec: Any,
) -> str:
    job_id = _job_id("batch-walk")
    if lines is None:
        lines = (json.dumps({"id": f"rec-{n}", "title": f"Ticket {n}: slow"}) for n in range(3))
        spec.update(
            input_format="records",
            template={
                "endpoint": "/v1/responses",
                "model": "gpt-4o-mini",
                "prompt_template": "Classify this ticket: {title}",
                "id_field": "id",
            },
        )
    path = laneway.files / f"{job_id}.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    job = BatchJobInput(
        job_id=job_id,
        spec=BatchJobSpec(
            job_type="ticket_triage",
            workspace=WORKSPACE,
            requested_by=REQUESTER,
            input=ArtifactStore(laneway.settings.artifacts_path).put_file(
                path, "application/jsonl"
            ),
            **spec,
        ),
        plan_approval_above_usd=plan_approval_above_usd,
        polling=FAST_POLLING,
    )
    for kind, fields in faults:
        laneway.emulator.control.add_fault(_fault(kind, job_id, **fields))
    await laneway.env.client.start_workflow(
        BatchJobWorkflow.run,
        job,
        id=job_id,
        task_queue=laneway.settings.task_queue,
        static_summary="batch ticket_triage in acme, requested by alice",
    )
    return job_id


# background


async def background_running(laneway: Laneway) -> str:
    job_id = await _background(laneway, fault="response_stick")
    await _until_status(laneway, job_id, ProductStatus.RUNNING)
    return job_id


async def background_needs_review(laneway: Laneway) -> str:
    job_id = await _background(laneway, review=ReviewPolicy.REQUIRED)
    await _until_status(laneway, job_id, ProductStatus.NEEDS_REVIEW)
    return job_id


async def background_escalated(laneway: Laneway) -> str:
    job_id = await background_needs_review(laneway)
    await laneway.client.act(job_id, Action.ESCALATE, ACTOR, "the customer is waiting")
    await eventually(
        f"{job_id} is escalated", lambda: _status(laneway, job_id), lambda s: s.facts.escalated
    )
    return job_id


async def background_failed_held(laneway: Laneway) -> str:
    job_id = await _background(laneway, fault="response_fail")
    await _until_status(laneway, job_id, ProductStatus.FAILED)
    return job_id


async def background_stopping(laneway: Laneway) -> str:
    """Canceled, and waiting for the provider to cancel its response: the job is ending.

    The provider answers 503 to the response's cancel for as long as the test runs, so the
    job stays where a slow provider leaves it: between the cancel and its end.
    """
    job_id = await background_running(laneway)
    (response_id,) = (await laneway.client.background_status(job_id)).provider_ids
    cancel_path = f"^/v1/responses/{re.escape(response_id)}/cancel$"
    laneway.emulator.control.add_fault({"kind": "http_503", "match": {"path_regex": cancel_path}})
    handle = laneway.client.temporal.get_workflow_handle(job_id)
    await handle.start_update(
        "cancel",
        ControlRequest(actor=ACTOR, note="not needed any more"),
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
    )
    await eventually(
        f"{job_id} is ending",
        lambda: laneway.client.background_status(job_id),
        lambda s: not s.facts.open,
    )
    return job_id


async def background_completed(laneway: Laneway) -> str:
    job_id = await _background(laneway)
    await _until_closed(laneway, job_id)
    return job_id


async def background_completed_archived(laneway: Laneway) -> str:
    job_id = await background_completed(laneway)
    await laneway.client.act(job_id, Action.ARCHIVE, ACTOR, "done with it")
    return job_id


async def background_canceled(laneway: Laneway) -> str:
    job_id = await background_running(laneway)
    await laneway.client.act(job_id, Action.CANCEL, ACTOR, "not needed any more")
    await _until_closed(laneway, job_id)
    return job_id


async def background_expired(laneway: Laneway) -> str:
    # Nobody reviews it within its (one second) review window.
    job_id = await _background(
        laneway, review=ReviewPolicy.REQUIRED, review_deadline=timedelta(seconds=1)
    )
    await _until_closed(laneway, job_id)
    return job_id


async def background_failed_archived(laneway: Laneway) -> str:
    job_id = await background_failed_held(laneway)
    await laneway.client.act(job_id, Action.ARCHIVE, ACTOR, "known outage")
    await _until_closed(laneway, job_id)
    return job_id


# batch


async def batch_running(laneway: Laneway) -> str:
    # Its one batch never leaves finalizing: a shard stays in flight.
    job_id = await _batch(laneway, faults=[("batch_stick_finalizing", {})])
    await eventually(
        f"{job_id} runs a shard",
        lambda: laneway.client.batch_status(job_id),
        lambda s: (
            s.status == ProductStatus.RUNNING and s.shards_in_flight > 0 and bool(s.provider_ids)
        ),
    )
    return job_id


async def batch_plan_review(laneway: Laneway) -> str:
    job_id = await _batch(laneway, plan_approval_above_usd=Decimal("0"))
    await _until_status(laneway, job_id, ProductStatus.NEEDS_REVIEW)
    return job_id


async def batch_results_review(laneway: Laneway) -> str:
    job_id = await _batch(laneway, review_policy=ReviewPolicy.REQUIRED)
    await _until_status(laneway, job_id, ProductStatus.NEEDS_REVIEW)
    return job_id


async def batch_failed_held(laneway: Laneway) -> str:
    # Every record fails with a retryable error, and one round is all the budget allows.
    every_record_fails = ("batch_fail_fraction", {"fraction": 1.0, "status_code": 500})
    job_id = await _batch(laneway, faults=[every_record_fails], max_rounds=1)
    await _until_status(laneway, job_id, ProductStatus.FAILED)
    return job_id


async def batch_failed_input(laneway: Laneway) -> str:
    job_id = await _batch(laneway, lines=["not json", "{}"])
    await _until_closed(laneway, job_id)
    return job_id


async def batch_completed(laneway: Laneway) -> str:
    job_id = await _batch(laneway)
    await _until_closed(laneway, job_id)
    return job_id


async def batch_canceled(laneway: Laneway) -> str:
    job_id = await batch_plan_review(laneway)
    await laneway.client.act(job_id, Action.CANCEL, ACTOR, "not needed any more")
    await _until_closed(laneway, job_id)
    return job_id


# ---- the states --------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    lane: Lane
    name: str
    reach: Callable[[Laneway], Awaitable[str]]
    offered: tuple[Action, ...]
    status: ProductStatus
    closed_as: WorkflowExecutionStatus = RUNNING
    # Words a refusal of this action must contain, beyond being a plain sentence.
    refusal_words: dict[Action, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.lane.value}-{self.name}"


A = Action
ALREADY_ARCHIVED = {A.ARCHIVE: "already archived"}
STATES = [
    State(Lane.BACKGROUND, "running", background_running, (A.CANCEL,), ProductStatus.RUNNING),
    State(
        Lane.BACKGROUND,
        "needs_review",
        background_needs_review,
        (A.APPROVE, A.REJECT, A.CANCEL, A.ESCALATE),
        ProductStatus.NEEDS_REVIEW,
    ),
    State(
        Lane.BACKGROUND,
        "needs_review_escalated",
        background_escalated,
        (A.APPROVE, A.REJECT, A.CANCEL),
        ProductStatus.NEEDS_REVIEW,
        refusal_words={A.ESCALATE: "is already escalated"},
    ),
    State(
        Lane.BACKGROUND,
        "failed_held",
        background_failed_held,
        (A.RETRY, A.ARCHIVE),
        ProductStatus.FAILED,
    ),
    State(Lane.BACKGROUND, "stopping", background_stopping, (), ProductStatus.RUNNING),
    State(
        Lane.BACKGROUND,
        "completed",
        background_completed,
        (A.ARCHIVE,),
        ProductStatus.COMPLETED,
        WorkflowExecutionStatus.COMPLETED,
    ),
    State(
        Lane.BACKGROUND,
        "completed_archived",
        background_completed_archived,
        (),
        ProductStatus.COMPLETED,
        WorkflowExecutionStatus.COMPLETED,
        ALREADY_ARCHIVED,
    ),
    State(
        Lane.BACKGROUND,
        "canceled",
        background_canceled,
        (A.ARCHIVE,),
        ProductStatus.CANCELED,
        WorkflowExecutionStatus.CANCELED,
    ),
    State(
        Lane.BACKGROUND,
        "expired",
        background_expired,
        (A.ARCHIVE,),
        ProductStatus.EXPIRED,
        WorkflowExecutionStatus.FAILED,
    ),
    State(
        Lane.BACKGROUND,
        "failed_archived",
        background_failed_archived,
        (),
        ProductStatus.FAILED,
        WorkflowExecutionStatus.FAILED,
        ALREADY_ARCHIVED,
    ),
    State(Lane.BATCH, "running", batch_running, (A.CANCEL,), ProductStatus.RUNNING),
    State(
        Lane.BATCH,
        "needs_review_plan",
        batch_plan_review,
        (A.APPROVE, A.REJECT, A.CANCEL, A.ESCALATE),
        ProductStatus.NEEDS_REVIEW,
    ),
    State(
        Lane.BATCH,
        "needs_review_results",
        batch_results_review,
        (A.APPROVE, A.REJECT, A.CANCEL, A.ESCALATE),
        ProductStatus.NEEDS_REVIEW,
    ),
    State(Lane.BATCH, "failed_held", batch_failed_held, (A.RETRY, A.ARCHIVE), ProductStatus.FAILED),
    State(
        Lane.BATCH,
        "failed_input",
        batch_failed_input,
        (A.ARCHIVE,),
        ProductStatus.FAILED,
        WorkflowExecutionStatus.FAILED,
        {A.RETRY: "input"},
    ),
    State(
        Lane.BATCH,
        "completed",
        batch_completed,
        (A.ARCHIVE,),
        ProductStatus.COMPLETED,
        WorkflowExecutionStatus.COMPLETED,
    ),
    State(
        Lane.BATCH,
        "canceled",
        batch_canceled,
        (A.ARCHIVE,),
        ProductStatus.CANCELED,
        WorkflowExecutionStatus.CANCELED,
    ),
]


# What the state an accepted action answers with shows (archive and escalate: see below).
MOVED_ON: dict[Action, Callable[[JobState], bool]] = {
    A.APPROVE: lambda s: s.status != ProductStatus.NEEDS_REVIEW,
    A.REJECT: lambda s: s.status == ProductStatus.CANCELED,
    A.CANCEL: lambda s: s.status == ProductStatus.CANCELED,
    A.RETRY: lambda s: s.status not in (ProductStatus.FAILED, ProductStatus.EXPIRED),
}


def _case_id(state: State, action: Action) -> str:
    verdict = "offered" if action in state.offered else "refused"
    return f"{state.id}-{action.value}-{verdict}"


CASES = [
    pytest.param(state, action, id=_case_id(state, action)) for state in STATES for action in Action
]


class Witnesses:
    """One job per state for the checks that leave it as it was, made when first needed."""

    def __init__(self) -> None:
        self._jobs: dict[str, str] = {}

    async def job_in(self, state: State, laneway: Laneway) -> str:
        if state.id not in self._jobs:
            self._jobs[state.id] = await state.reach(laneway)
        return self._jobs[state.id]


@pytest.fixture(scope="module")
def witnesses() -> Witnesses:
    return Witnesses()


# ---- checks ------------------------------------------------------------------------------------


def _ledger(laneway: Laneway) -> Ledger:
    return Ledger.from_url(laneway.settings.ledger_url)


async def current_details_actions(client: LanewayClient, job_id: str) -> str:
    """What the Web UI's current details say one can do: "a, b" or "none"."""
    handle = client.temporal.get_workflow_handle(job_id)
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    found = DETAILS_ACTIONS.search(metadata.current_details)
    assert found is not None, f"no allowed actions in {metadata.current_details!r}"
    return found.group(1).strip()


def assert_plain_sentence(message: str) -> None:
    assert message.strip(), "the refusal gives no reason"
    assert CLASS_NAMES.search(message) is None, f"not a plain sentence: {message!r}"
    assert "\n" not in message.strip(), f"not one sentence: {message!r}"


def assert_points_only_to_offered_actions(reason: str, allowed: list[str]) -> None:
    """A refusal that says what one can do instead names only actions the job offers."""
    listed = re.search(r"allowed now: ([a-z, ]+)", reason)
    if listed is not None:
        assert listed.group(1) == (", ".join(allowed) or "nothing"), reason
    for advice, action in (("but archive", "archive"), ("cancel it first", "cancel")):
        if advice in reason:
            assert action in allowed, f"{reason!r} points to {action}, which is not offered"


@pytest.mark.parametrize("state", [pytest.param(s, id=s.id) for s in STATES])
async def test_state_offers_its_actions_everywhere(
    laneway: Laneway, witnesses: Witnesses, state: State
) -> None:
    """The job is in the state, offers what the state takes, and the Web UI agrees."""
    job_id = await witnesses.job_in(state, laneway)
    view = await laneway.client.status(job_id)
    assert (view.lane, view.status) == (state.lane.value, state.status)
    assert view.allowed_actions == [a.value for a in state.offered]
    assert await laneway.closed_as(job_id) == state.closed_as
    if state.closed_as == RUNNING:
        shown = await current_details_actions(laneway.client, job_id)
        assert shown == (", ".join(view.allowed_actions) or "none")
    else:
        # The ledger's view of an ended job offers the same.
        record = await asyncio.to_thread(_ledger(laneway).get_job, job_id)
        assert record is not None and record.allowed_actions() == view.allowed_actions


@pytest.mark.parametrize(("state", "action"), CASES)
async def test_action_is_taken_if_offered_and_refused_if_not(
    laneway: Laneway, witnesses: Witnesses, state: State, action: Action
) -> None:
    if action in state.offered:
        await _offered_action_is_taken(laneway, state, action)
        return
    job_id = await witnesses.job_in(state, laneway)
    reason = await _other_action_is_refused(laneway, job_id, action)
    assert state.refusal_words.get(action, "") in reason


async def _offered_action_is_taken(laneway: Laneway, state: State, action: Action) -> None:
    job_id = await state.reach(laneway)  # a fresh job: the action changes it
    before = await laneway.client.status(job_id)
    assert action.value in before.allowed_actions
    after = await laneway.client.act(job_id, action, ACTOR, f"walk: {action.value}")
    assert after.job_id == job_id
    moved_on = MOVED_ON.get(action)
    if moved_on is not None:
        assert moved_on(after), f"{action.value} answered {after.status}"
    if action is Action.ARCHIVE:
        # Archived (by the workflow, or in the ledger once it has closed): nothing is left
        # to do, and a second archive says so.
        await _until_closed(laneway, job_id)
        archived = await laneway.client.status(job_id)
        assert archived.facts.archived and archived.allowed_actions == []
        record = await asyncio.to_thread(_ledger(laneway).get_job, job_id)
        assert record is not None and record.archived_by == ACTOR.id
        with pytest.raises(JobActionRefused, match="already archived") as refused:
            await laneway.client.act(job_id, Action.ARCHIVE, ACTOR, "again")
        assert not isinstance(refused.value, JobActionForbidden)
    if action is Action.ESCALATE:
        assert after.facts.escalated and Action.ESCALATE.value not in after.allowed_actions


async def _other_action_is_refused(laneway: Laneway, job_id: str, action: Action) -> str:
    """Refused with a plain sentence, and the job is as it was; returns the sentence."""
    before = await laneway.client.status(job_id)
    assert action.value not in before.allowed_actions
    with pytest.raises(JobActionRefused) as refused:
        await laneway.client.act(job_id, action, ACTOR, f"walk: {action.value}")
    assert not isinstance(refused.value, JobActionForbidden), str(refused.value)
    assert_plain_sentence(str(refused.value))
    after = await laneway.client.status(job_id)
    assert (after.status, after.allowed_actions) == (before.status, before.allowed_actions)
    reason = str(refused.value)
    assert_points_only_to_offered_actions(reason, after.allowed_actions)
    return reason


# ---- the failed hold, in time ------------------------------------------------------------------


async def test_a_failed_job_is_held_open_for_its_hold_then_closes_failed(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
) -> None:
    hold = timedelta(hours=1)
    job = BackgroundJobInput(
        job_id=_job_id("job-hold"),
        spec=JobSpec(
            job_type="research_brief",
            workspace=WORKSPACE,
            requested_by=REQUESTER,
            input=JobInput(model="gpt-4o-mini", text="Brief on churn: support is great."),
        ),
        polling=FAST_POLLING,
        failed_hold=hold,
    )
    emulator.control.add_fault(_fault("response_fail", job.job_id, message="GPU fell over"))
    client = LanewayClient(time_skipping_env.client, settings)
    try:
        async with laneway_worker(time_skipping_env):
            handle = await time_skipping_env.client.start_workflow(
                BackgroundJobWorkflow.run, job, id=job.job_id, task_queue=settings.task_queue
            )
            failed = await eventually(
                "the job failed",
                lambda: client.background_status(job.job_id),
                lambda view: view.status == ProductStatus.FAILED,
            )
            assert failed.allowed_actions == ["retry", "archive"]
            await time_skipping_env.sleep(hold - timedelta(minutes=1))
            just_before = await client.background_status(job.job_id)
            assert just_before.status == ProductStatus.FAILED
            assert just_before.allowed_actions == ["retry", "archive"]
            assert (await handle.describe()).status == RUNNING
            outcome = await job_outcome(handle)  # time skips to the end of the hold
            closed = await handle.describe()
    finally:
        client.close()
    assert outcome.status == ProductStatus.FAILED
    assert outcome.reason is not None and "GPU fell over" in outcome.reason
    assert closed.status == WorkflowExecutionStatus.FAILED
    assert closed.close_time is not None
    assert closed.close_time - failed.updated_at >= hold
