"""The Python client for backend services and operators: start jobs, find them, act on them.

    client = await LanewayClient.connect(settings)
    job_id = await client.start_background_job(spec)      # or start_batch_job: returns at once
    view = await client.status(job_id)                     # product status, cost, actions
    jobs = await client.list_jobs(status="needs_review", workspace="acme")
    await client.approve(job_id, reviewer, "looks right")  # returns once the job moved on
    outcome = await client.wait(job_id)                    # how the job ended
    results = await client.results(job_id)                 # output / results file, streamed

A job is one Temporal workflow; its job id is the workflow id. Background and batch jobs
answer the same calls: `status` gives a `JobView` (background) or `BatchProgress` (batch), both
with status, lane, workspace, cost and allowed actions. Every control action names an `Actor`
(who, which workspace, which roles) as the calling surface authenticated them; the job's
workflow refuses what that actor may not do (`JobActionForbidden`) or what makes no sense now
(`JobActionRefused`). Every error this client raises is a `LanewayClientError`.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from pydantic import BaseModel, Field
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import (
    ApplicationError,
    CancelledError,
    FailureError,
    WorkflowAlreadyStartedError,
)
from temporalio.service import RPCError, RPCStatusCode

from laneway.background import (
    Actor,
    BackgroundJobInput,
    ControlRequest,
    JobOutcome,
    JobView,
    PollingPolicy,
)
from laneway.batch import BatchJobInput, BatchJobSpec, BatchOutcome, BatchProgress
from laneway.destinations import DestinationRefused, WebhookPolicy
from laneway.jobs import (
    INLINE_TEXT_MAX_CHARS,
    ArtifactRef,
    JobInput,
    JobSpec,
    PostWebhook,
    SideEffect,
    job_id_problem,
)
from laneway.lifecycle import FAILURE_TYPES, JobEnd, JobState
from laneway.permissions import ACTION_FORBIDDEN, refusal
from laneway.settings import Settings
from laneway.status import Action, EventKind, Lane, ProductStatus, allowed_actions, refusal_reason
from laneway.visibility import jobs_query
from store.artifacts import ArtifactError, ArtifactStore
from store.ledger import JobEvent, JobRecord, Ledger
from store.ledger.migrate import current_revision
from workers.temporal_client import connect
from workflows.background_job import BackgroundJobWorkflow
from workflows.batch_job import BatchJobWorkflow
from workflows.search_attributes import (
    LANEWAY_JOB_TYPE,
    LANEWAY_LANE,
    LANEWAY_PROGRESS,
    LANEWAY_RECORDS_FAILED,
    LANEWAY_RECORDS_SUCCEEDED,
    LANEWAY_RECORDS_TOTAL,
    LANEWAY_STATUS,
    LANEWAY_WORKSPACE,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
_STATE_TYPES: dict[Lane, type[BaseModel]] = {Lane.BACKGROUND: JobView, Lane.BATCH: BatchProgress}
_END_TYPES: dict[Lane, type[JobOutcome] | type[BatchOutcome]] = {
    Lane.BACKGROUND: JobOutcome,
    Lane.BATCH: BatchOutcome,
}
NOT_READY_RETRIES = 5  # an action that meets a job closing is tried again this many times
NOT_READY_PAUSE = 0.2  # seconds
PROVIDER_EVENT = "provider_event"  # the signal both job workflows take from webhooks
_WORKFLOW_LANES = {"BackgroundJobWorkflow": Lane.BACKGROUND, "BatchJobWorkflow": Lane.BATCH}


class LanewayClientError(Exception):
    """Base of every error this client raises; the message is meant for a person."""


class TemporalUnreachable(LanewayClientError):
    """The Temporal server named in the settings did not answer."""


class TemporalRefused(LanewayClientError):
    """Temporal answered, and refused the call (e.g. a namespace that does not exist)."""


class ActionFateUnknown(LanewayClientError):
    """An action or a start was sent to Temporal and no answer came back: it may or may not
    have been taken. Check the job's status before sending it again."""


# Statuses that mean "no answer" rather than "no": the server is down, the connection was
# lost, or the deadline passed.
_NO_ANSWER = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.UNKNOWN,
    }
)


class JobNotFoundError(LanewayClientError, LookupError):
    """No job with this id exists (or Temporal removed it after its retention period)."""


class JobRequestRefused(LanewayClientError, ValueError):
    """A job cannot start as asked: a malformed job id, or a side effect's destination that
    the policy refuses. Nothing was started."""


class InvalidJobId(JobRequestRefused):
    """A job id that cannot be used (e.g. it contains `/`, so no URL could reach the job)."""


class JobActionRefused(LanewayClientError):
    """The job refused a control action: wrong status, already decided, or the job has ended."""


class JobActionForbidden(JobActionRefused):
    """The actor may not take this action on this job (workspace, role, or own job)."""


class ResultNotReady(LanewayClientError):
    """The job exists but has no results yet."""


class JobStoppedError(LanewayClientError):
    """The job's workflow stopped without an outcome (terminated or cancelled in Temporal)."""


class RecordTotals(BaseModel):
    """A batch job's records as visibility last counted them."""

    total: int
    succeeded: int
    failed: int


class JobSummary(BaseModel):
    """One job as Temporal visibility lists it (no worker needed to answer).

    `records` are a batch job's counts, as numbers (None for a background job, or a batch
    job not yet planned); `progress` is the same told for people (round, pending), for
    tables only: it is left out of the JSON.
    """

    job_id: str
    lane: str | None
    status: str | None
    job_type: str | None
    workspace: str | None
    records: RecordTotals | None = None
    progress: str | None = Field(default=None, exclude=True)
    started_at: datetime
    closed_at: datetime | None

    @classmethod
    def from_execution(cls, execution: WorkflowExecution) -> JobSummary:
        found = execution.typed_search_attributes
        total = found.get(LANEWAY_RECORDS_TOTAL)
        records = None
        if total is not None:
            records = RecordTotals(
                total=total,
                succeeded=found.get(LANEWAY_RECORDS_SUCCEEDED) or 0,
                failed=found.get(LANEWAY_RECORDS_FAILED) or 0,
            )
        return cls(
            job_id=execution.id,
            lane=found.get(LANEWAY_LANE),
            status=found.get(LANEWAY_STATUS),
            job_type=found.get(LANEWAY_JOB_TYPE),
            workspace=found.get(LANEWAY_WORKSPACE),
            records=records,
            progress=found.get(LANEWAY_PROGRESS),
            started_at=execution.start_time,
            closed_at=execution.close_time,
        )


class SideEffectShown(BaseModel):
    """What a job does once approved, as its reviewer sees it: no secret, no query string."""

    kind: str
    destination: str | None = Field(
        default=None, description="outbox:<sub-path> under the outbox root, or the webhook URL"
    )


class JobDetails(BaseModel):
    """A job's state and its audit trail, as `jobs show` and `GET /v1/jobs/{id}` answer."""

    job: JobState
    timeline: list[JobEvent]
    side_effect: SideEffectShown | None = Field(
        default=None, description="where the job delivers once approved (from its record)"
    )


@dataclass(frozen=True)
class ResultFile:
    """A job's results or errors: a name and media type to serve them under, and the bytes.

    `failure` says why, when the job failed, expired or was canceled and these are what it
    left (partial output, or the records that did succeed), e.g. "job job-1 failed: ...".
    """

    filename: str
    media_type: str
    chunks: Iterator[bytes]
    failure: str | None = None


def new_job_id() -> str:
    return f"job-{uuid.uuid4().hex}"


def static_summary(spec: JobSpec | BatchJobSpec) -> str:
    """The one line the Temporal Web UI shows for the job; never any prompt text."""
    lane = "batch " if isinstance(spec, BatchJobSpec) else ""
    return f"{lane}{spec.job_type} in {spec.workspace}, requested by {spec.requested_by}"


class LanewayClient:
    """Start, list, follow and control background and batch jobs on a Laneway deployment.

    Talks to Temporal for everything about a running job, and reads the job ledger and the
    artifact store (both named by `settings`) for audit trails and stored results.
    """

    def __init__(self, temporal: Client, settings: Settings) -> None:
        """`temporal` must use the pydantic data converter, as `workers.temporal_client`'s."""
        self.temporal = temporal
        self.settings = settings
        self._ledger: Ledger | None = None
        self._lanes: dict[str, Lane] = {}

    @classmethod
    async def connect(cls, settings: Settings) -> LanewayClient:
        """Connect to the Temporal server and namespace that `settings` name."""
        try:
            return cls(await connect(settings), settings)
        except RuntimeError as error:  # the SDK's "Failed client connect: ..."
            raise TemporalUnreachable(
                f"cannot reach Temporal at {settings.temporal_address}: start it "
                "(`laneway dev`) or set LANEWAY_TEMPORAL_ADDRESS"
            ) from error

    # ---- starting jobs -------------------------------------------------------------------

    async def start_background_job(self, spec: JobSpec, *, job_id: str | None = None) -> str:
        """Start a background job and return its id without waiting for the provider.

        Pass your own `job_id` to make the start safe to repeat: starting an id that already
        exists, running or ended, returns that job and starts nothing (the first spec wins).
        Without one, a fresh `job-<hex>` id is made.
        """
        job = BackgroundJobInput(
            job_id=self._new_or_checked(job_id), spec=spec, polling=self._polling()
        )
        await self._check_side_effect(spec.side_effect)
        await self._start(BackgroundJobWorkflow.run, job, job.job_id, spec, Lane.BACKGROUND)
        return job.job_id

    async def start_batch_job(self, spec: BatchJobSpec, *, job_id: str | None = None) -> str:
        """Start a batch job and return its id at once; safe to repeat with your own `job_id`.

        A plan estimated above the workspace's threshold (settings.batch_plan_approval_usd)
        waits in needs_review for a reviewer before anything reaches the provider.
        """
        job = BatchJobInput(
            job_id=self._new_or_checked(job_id),
            spec=spec,
            plan_approval_above_usd=self.settings.batch_plan_approval_usd.get(spec.workspace),
        )
        await self._check_side_effect(spec.side_effect)
        if self.settings.webhooks_enabled:
            job = job.model_copy(update={"polling": self._polling()})
        await self._start(BatchJobWorkflow.run, job, job.job_id, spec, Lane.BATCH)
        return job.job_id

    def store_batch_input(self, source: Path | BinaryIO) -> ArtifactRef:
        """Stream a JSONL file into the artifact store (constant memory); use the reference
        as `BatchJobSpec.input`. A blocking call: from async code run it in a thread."""
        return self.store_input(source, "application/jsonl")

    def store_input(self, source: Path | BinaryIO, media_type: str = "text/plain") -> ArtifactRef:
        """Stream an input into the artifact store; use the reference as `JobInput.artifact`
        for inputs too large to travel inline. Blocking: from async code run it in a thread."""
        store = ArtifactStore(self.settings.artifacts_path)
        if isinstance(source, Path):
            return store.put_file(source, media_type)
        return store.put_stream(source, media_type)

    def job_input(
        self,
        *,
        model: str,
        text: str | None = None,
        artifact: ArtifactRef | None = None,
        **options: Any,
    ) -> JobInput:
        """A `JobInput` for text of any length: inline up to `INLINE_TEXT_MAX_CHARS`, above
        that stored in the artifact store and passed by reference, so large text never enters
        workflow history. `options` are JobInput's other fields. Blocking when it stores."""
        if text is not None and len(text) > INLINE_TEXT_MAX_CHARS:
            artifact = self.store_input(io.BytesIO(text.encode()), "text/plain; charset=utf-8")
            text = None
        return JobInput(model=model, text=text, artifact=artifact, **options)

    # ---- finding and following jobs -------------------------------------------------------

    async def list_jobs(
        self,
        *,
        status: ProductStatus | str | None = None,
        lane: Lane | str | None = None,
        workspace: str | None = None,
        job_type: str | None = None,
        limit: int = 100,
    ) -> list[JobSummary]:
        """Jobs matching every filter given, newest first, from Temporal visibility.

        Visibility is eventually consistent: a job started a moment ago may show a second later.
        """
        if status is not None:
            status = _known(ProductStatus, status, "status")
        if lane is not None:
            lane = _known(Lane, lane, "lane")
        try:
            query = jobs_query(status=status, lane=lane, workspace=workspace, job_type=job_type)
        except ValueError as error:
            raise LanewayClientError(str(error)) from None
        found: list[JobSummary] = []
        try:
            async for execution in self.temporal.list_workflows(query, limit=limit):
                found.append(JobSummary.from_execution(execution))
        except RPCError as error:
            raise self._plain_rpc_error(error) from error
        return found

    async def status(self, job_id: str) -> JobState:
        """The job as people see it: status, reason, progress, cost and allowed actions.

        Answered by the job's workflow, so a worker must be serving the task queue.
        """
        lane = await self.lane(job_id)
        result_type = _STATE_TYPES[lane]
        state = await self._call(job_id, lambda job: job.query("status", result_type=result_type))
        assert isinstance(state, JobView | BatchProgress)
        return await self._with_ledger_archive(state)

    async def _with_ledger_archive(self, state: JobState) -> JobState:
        """An ended job is archived in the ledger (its workflow has closed): say so."""
        if state.facts.open or state.facts.archived:
            return state
        ledger = self._open_ledger()
        record = None if ledger is None else await asyncio.to_thread(ledger.get_job, state.job_id)
        if record is None or record.archived_at is None:
            return state
        facts = state.facts.model_copy(update={"archived": True})
        return state.model_copy(update={"facts": facts, "allowed_actions": allowed_actions(facts)})

    async def wait(self, job_id: str) -> JobEnd:
        """Wait until the job ends (completed, failed, canceled or expired) and say how.

        A job in review waits for a reviewer, and a failed job stays open for a retry until
        its hold ends, so this can take as long as those windows; use `status` to look in.
        """
        lane = await self.lane(job_id)
        handle = self.temporal.get_workflow_handle(job_id)
        outcome_type = _END_TYPES[lane]
        outcome: JobEnd = await self._call(job_id, lambda _: read_outcome(handle, outcome_type))
        return outcome

    async def lane(self, job_id: str) -> Lane:
        """Which lane the job runs in (asked once per job id: it never changes)."""
        if job_id not in self._lanes:
            await self.describe_job(job_id)
        return self._lanes[job_id]

    async def describe_job(self, job_id: str) -> JobSummary:
        """The job's visibility record (lane, workspace, status): no worker needed."""
        handle = self.temporal.get_workflow_handle(job_id)
        described = await self._call(job_id, lambda _: handle.describe())
        lane = _WORKFLOW_LANES.get(described.workflow_type)
        if lane is None:
            raise JobNotFoundError(f"{job_id} is not a Laneway job")
        self._lanes[job_id] = lane
        return JobSummary.from_execution(described)

    async def details(self, job_id: str) -> JobDetails:
        """`status` and `timeline` together; a job the ledger has not recorded yet (it was
        started a moment ago) has an empty timeline."""
        state = await self.status(job_id)
        try:
            timeline = await asyncio.to_thread(self.timeline, job_id)
        except JobNotFoundError:
            timeline = []
        side_effect = await asyncio.to_thread(self._side_effect_of, job_id)
        return JobDetails(job=state, timeline=timeline, side_effect=side_effect)

    def _side_effect_of(self, job_id: str) -> SideEffectShown | None:
        ledger = self._open_ledger()
        record = None if ledger is None else ledger.get_job(job_id)
        if record is None or not record.input_summary.get("side_effect"):
            return None
        return SideEffectShown(
            kind=str(record.input_summary["side_effect"]),
            destination=record.input_summary.get("side_effect_destination"),
        )

    def timeline(self, job_id: str) -> list[JobEvent]:
        """The job's audit trail, oldest first: every status change and action, who and why.

        Reads the ledger: a blocking call, so from async code run it in a thread.
        """
        ledger = self._open_ledger()
        if ledger is None or ledger.get_job(job_id) is None:
            raise JobNotFoundError(f"no job {job_id} in the ledger")
        return ledger.list_events(job_id)

    # ---- the same answers, typed for one lane ----------------------------------------------

    async def background_status(self, job_id: str) -> JobView:
        """`status` of a background job: attempts, provider ids, cost and actions."""
        state = await self.status(job_id)
        if not isinstance(state, JobView):
            raise LanewayClientError(f"job {job_id} is a {state.lane} job, not a background job")
        return state

    async def wait_background(self, job_id: str) -> JobOutcome:
        """`wait` for a background job: its outcome names the stored result."""
        outcome = await self.wait(job_id)
        if not isinstance(outcome, JobOutcome):
            raise LanewayClientError(f"job {job_id} is not a background job")
        return outcome

    async def batch_status(self, job_id: str) -> BatchProgress:
        """Records total, succeeded, failed and pending, the round, estimate and actions."""
        state = await self.status(job_id)
        if not isinstance(state, BatchProgress):
            raise LanewayClientError(f"job {job_id} is a {state.lane} job, not a batch job")
        return state

    async def wait_batch(self, job_id: str) -> BatchOutcome:
        """Wait until the batch job ends; its report names the results and errors files."""
        outcome = await self.wait(job_id)
        if not isinstance(outcome, BatchOutcome):
            raise LanewayClientError(f"job {job_id} is not a batch job")
        return outcome

    # ---- control actions: each one audited with who and why -------------------------------

    async def approve(self, job_id: str, actor: Actor, note: str = "") -> JobState:
        """Approve a job (or a batch plan) in review: a reviewer of its workspace, not its
        requester. Returns once the job moved on (its side effect, if any, has run)."""
        return await self.act(job_id, Action.APPROVE, actor, note)

    async def reject(self, job_id: str, actor: Actor, note: str = "") -> JobState:
        """Reject a job in review; it ends canceled with the note as its reason."""
        return await self.act(job_id, Action.REJECT, actor, note)

    async def cancel(self, job_id: str, actor: Actor, note: str = "") -> JobState:
        """Stop a job before its side effect runs; the provider's work is cancelled too.

        Allowed to the requester and to the workspace's operators and reviewers.
        """
        return await self.act(job_id, Action.CANCEL, actor, note)

    async def retry(self, job_id: str, actor: Actor, note: str = "") -> JobState:
        """Give a failed job another try (a batch: a retry round); returns once it is queued."""
        return await self.act(job_id, Action.RETRY, actor, note)

    async def escalate(self, job_id: str, actor: Actor, note: str = "") -> JobState:
        """Flag a job in review for attention; it keeps its place in the review queue."""
        return await self.act(job_id, Action.ESCALATE, actor, note)

    async def archive(self, job_id: str, actor: Actor, note: str = "") -> JobState:
        """Close a failed job nobody will retry, before its hold runs out."""
        return await self.act(job_id, Action.ARCHIVE, actor, note)

    async def act(
        self, job_id: str, action: Action | str, actor: Actor, note: str = ""
    ) -> JobState:
        """Any control action by name (what the CLI and HTTP API call)."""
        name = _known(Action, action, "action").value
        if not await self._is_open(job_id):
            return await self._act_on_ended(job_id, Action(name), actor, note)
        lane = await self.lane(job_id)  # known now: `_is_open` described the job
        request = ControlRequest(actor=actor, note=note)
        result_type = _STATE_TYPES[lane]
        for attempt in range(NOT_READY_RETRIES + 1):
            try:
                state = await self._call(
                    job_id,
                    lambda job: job.execute_update(name, request, result_type=result_type),
                    sent=f"the {name} of job {job_id}",
                )
            except JobActionForbidden:
                raise
            except (JobActionRefused, TemporalRefused) as refused:
                # The job may have closed while the action was on its way (Temporal then
                # refuses the update as "not ready" while the job's last task settles):
                # answer as for an ended job, so a refusal reads the same however it raced.
                if not await self._is_open(job_id):
                    return await self._act_on_ended(job_id, Action(name), actor, note)
                if isinstance(refused, JobActionRefused) or attempt == NOT_READY_RETRIES:
                    raise
                await asyncio.sleep(NOT_READY_PAUSE)
                continue
            assert isinstance(state, JobView | BatchProgress)
            return state
        raise AssertionError("unreachable")

    async def _is_open(self, job_id: str) -> bool:
        """Whether the job's workflow still runs (one describe, which also learns its lane)."""
        return (await self.describe_job(job_id)).closed_at is None

    async def _act_on_ended(self, job_id: str, action: Action, actor: Actor, note: str) -> JobState:
        """An action on a job whose workflow has closed, checked by the same rules as the
        workflow's own (who may, and whether the job takes it now): only archive is left,
        and it is a ledger action."""
        state = await self.status(job_id)
        forbidden = refusal(
            actor, action, workspace=state.workspace, requested_by=state.requested_by
        )
        if forbidden is not None:
            raise JobActionForbidden(forbidden)
        refused = refusal_reason(action, state.facts)
        if refused is not None:
            allowed = ", ".join(state.allowed_actions) or "nothing"
            sentence = refused.replace("the job", f"job {job_id}", 1)
            raise JobActionRefused(f"{sentence}; allowed now: {allowed}")
        ledger = self._open_ledger()
        if ledger is None:
            raise JobNotFoundError(f"no job {job_id} in the ledger")
        await asyncio.to_thread(
            ledger.record_event, job_id, EventKind.ARCHIVED, f"{job_id}/archived", actor.id, note
        )
        return await self._with_ledger_archive(state)

    async def notify_provider_event(self, provider_id: str) -> str | None:
        """Tell the job that owns `provider_id` (a response or batch id) to look at it now.

        Returns that job's id, or None when no job has this provider id. Raises
        `JobActionRefused` when the job has already ended (nothing waits for the news).
        """
        ledger = self._open_ledger()
        job = (
            None
            if ledger is None
            else await asyncio.to_thread(ledger.find_job_by_provider_id, provider_id)
        )
        if job is None:
            return None
        if job.ended_at is not None:
            raise JobActionRefused(
                f"job {job.job_id} has ended ({job.status.value}); nothing waits for the news"
            )
        handle = self.temporal.get_workflow_handle(job.workflow_id)
        await self._call(
            job.job_id,
            lambda _: handle.signal(PROVIDER_EVENT, provider_id),
            sent=f"the news of {provider_id} to job {job.job_id}",
        )
        return job.job_id

    # ---- results ---------------------------------------------------------------------------

    async def results(self, job_id: str, *, errors: bool = False) -> ResultFile:
        """The job's output (background) or results JSONL (batch); `errors=True` for what
        went wrong instead: a batch's per-record errors, a background job's failed attempts.

        Background output is there from the moment the provider finished (also while the job
        waits for review); batch files once its results are built. The chunks are read lazily
        and verified against their checksum.
        """
        lane = await self.lane(job_id)
        if lane is Lane.BATCH:
            return await self._batch_file(job_id, errors=errors)
        if errors:
            return await asyncio.to_thread(self._background_errors, job_id)
        return await asyncio.to_thread(self._background_output, job_id)

    def fetch_result(self, job_id: str) -> str:
        """The output text of a background job's latest attempt, from the result store.

        A job without output raises `ResultNotReady` saying why: not finished yet, or it
        failed (expired, was canceled) and why. Reads the ledger and artifact store directly:
        a blocking call, so from async code run it in a thread (`asyncio.to_thread`).
        """
        return b"".join(self._background_output(job_id).chunks).decode()

    def _background_output(self, job_id: str) -> ResultFile:
        ledger = self._open_ledger()
        job = None if ledger is None else ledger.get_job(job_id)
        if ledger is None or job is None:
            raise JobNotFoundError(f"no job {job_id} in the result store")
        failure = _ended_without_success(job, ledger.list_events(job_id))
        stored = ledger.get_result(job_id)
        if stored is None:
            if failure is not None:
                raise ResultNotReady(f"{failure}; it has no output")
            raise ResultNotReady(
                f"job {job_id} has no output yet: it is {job.status.value} and the provider "
                "has not finished; see its status for where it is"
            )
        if stored.output is None:
            text = (stored.inline_output or "").encode()
        else:
            text = ArtifactStore(self.settings.artifacts_path).read_bytes(stored.output)
        return ResultFile(f"{job_id}.txt", "text/plain; charset=utf-8", iter([text]), failure)

    def read_artifact(self, ref: ArtifactRef) -> Iterator[bytes]:
        """The bytes of a stored file (e.g. a batch report's `results`), in chunks, verified;
        a missing or altered file raises `LanewayClientError` (possibly partway through)."""
        try:
            yield from ArtifactStore(self.settings.artifacts_path).iter_chunks(ref, verify=True)
        except ArtifactError as error:
            raise LanewayClientError(
                f"the stored file {ref.uri} cannot be read: {error}"
            ) from error

    def close(self) -> None:
        """Release the ledger's database connections (Temporal's need no closing)."""
        if self._ledger is not None:
            self._ledger.engine.dispose()
            self._ledger = None

    # ---- internals -------------------------------------------------------------------------

    def _polling(self) -> PollingPolicy:
        """Webhooks on: backing off to the slow safety-net interval. Off: the lane's default.

        The first polls stay quick because no webhook says a response went in_progress; the
        cap bounds how long a lost webhook can delay a job."""
        if not self.settings.webhooks_enabled:
            return PollingPolicy()
        return PollingPolicy(max_interval=self.settings.webhook_poll_interval)

    @staticmethod
    def _new_or_checked(job_id: str | None) -> str:
        if job_id is None:
            return new_job_id()
        problem = job_id_problem(job_id)
        if problem is not None:
            raise InvalidJobId(problem)
        return job_id

    async def _check_side_effect(self, effect: SideEffect | None) -> None:
        """Refuse, before anything starts, a destination the workers would refuse."""
        if isinstance(effect, PostWebhook):
            if effect.secret_ref is not None and effect.secret_ref not in (
                self.settings.webhook_secrets
            ):
                known = ", ".join(sorted(self.settings.webhook_secrets)) or "none configured"
                raise JobRequestRefused(
                    f"post_webhook.secret_ref {effect.secret_ref!r} names no secret in "
                    f"LANEWAY_WEBHOOK_SECRETS (known: {known})"
                )
            policy = WebhookPolicy(tuple(self.settings.webhook_allow_hosts))
            try:
                await policy.check(effect.url, must_resolve=False)
            except DestinationRefused as error:
                raise JobRequestRefused(str(error)) from None

    async def _start(
        self, run: Any, job: BaseModel, job_id: str, spec: JobSpec | BatchJobSpec, lane: Lane
    ) -> None:
        # Set at start (the workflow sets them again) so the job is listed, and its workspace
        # known to the HTTP API, before a worker has picked it up.
        attributes = TypedSearchAttributes(
            [
                SearchAttributePair(LANEWAY_STATUS, ProductStatus.QUEUED.value),
                SearchAttributePair(LANEWAY_LANE, lane.value),
                SearchAttributePair(LANEWAY_JOB_TYPE, spec.job_type),
                SearchAttributePair(LANEWAY_WORKSPACE, spec.workspace),
            ]
        )
        # An id that ran before and has ended is still the same job: nothing new starts.
        try:
            await self.temporal.start_workflow(
                run,
                job,
                id=job_id,
                task_queue=self.settings.task_queue,
                # Running: hand back the same job. Ended: refuse a second run of the same id.
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=static_summary(spec),
                search_attributes=attributes,
            )
        except WorkflowAlreadyStartedError:
            pass
        except RPCError as error:
            raise self._plain_rpc_error(error, sent=f"the start of job {job_id}") from error

    async def _batch_file(self, job_id: str, *, errors: bool) -> ResultFile:
        state: BatchProgress | BatchOutcome
        if await self._is_open(job_id):
            state = await self.batch_status(job_id)
        else:
            state = await self.wait_batch(job_id)
        failure = _failure_of(job_id, state.status, state.reason)
        report = state.report
        if report is None:
            if failure is not None:
                raise ResultNotReady(f"{failure}; it has no results file")
            raise ResultNotReady(
                f"job {job_id} has no results file yet: its results are built once every "
                "record is accounted for"
            )
        ref = report.errors if errors else report.results
        name = f"{job_id}-{'errors' if errors else 'results'}.jsonl"
        # The errors file is the answer to "what went wrong": it needs no warning.
        return ResultFile(
            name, "application/jsonl", self.read_artifact(ref), None if errors else failure
        )

    def _background_errors(self, job_id: str) -> ResultFile:
        """One JSON line per failure the audit trail recorded, with when and why."""
        failures = [
            {"at": event.at.isoformat(), "status": event.to_status, "reason": event.note}
            for event in self.timeline(job_id)
            if event.kind == EventKind.STATUS_CHANGED
            and event.to_status in (ProductStatus.FAILED, ProductStatus.EXPIRED)
        ]
        lines = "".join(json.dumps(failure) + "\n" for failure in failures)
        return ResultFile(f"{job_id}-errors.jsonl", "application/jsonl", iter([lines.encode()]))

    def _open_ledger(self) -> Ledger | None:
        """The ledger, or None while no worker has created its schema (so it has no jobs).

        A client only reads: creating or migrating the schema is the workers' job.
        """
        if self._ledger is None and current_revision(self.settings.ledger_url) is not None:
            self._ledger = Ledger.from_url(self.settings.ledger_url)
        return self._ledger

    async def _call(
        self,
        job_id: str,
        action: Callable[[WorkflowHandle[Any, Any]], Awaitable[T]],
        *,
        sent: str | None = None,
    ) -> T:
        """Run `action` on the job's workflow, turning Temporal's errors into plain ones.

        `sent` names what `action` asks of the job when it changes something (an Update, a
        signal): if no answer comes, that may have landed, and the error says so."""
        problem = job_id_problem(job_id)
        if problem is not None:  # no job can have such an id
            raise JobNotFoundError(f"no job {job_id[:140]!r}: {problem}")
        job = self.temporal.get_workflow_handle(job_id)
        try:
            return await action(job)
        except RPCTimeoutOrCancelledError as error:
            unknown = self._fate_unknown(sent or f"the call to job {job_id}", "no answer in time")
            raise unknown from error
        except WorkflowUpdateFailedError as error:
            # The validator's own sentence, e.g. "alice requested this job and cannot approve it".
            cause = error.cause
            message = _said(cause).replace("the job ", f"job {job_id} ", 1)
            if isinstance(cause, ApplicationError) and cause.type == ACTION_FORBIDDEN:
                raise JobActionForbidden(message) from error
            raise JobActionRefused(message) from error
        except WorkflowQueryFailedError as error:
            raise LanewayClientError(f"job {job_id} could not answer: {error.message}") from error
        except WorkflowFailureError as error:
            raise JobStoppedError(
                f"job {job_id} stopped without an outcome: {_said(error.cause)}"
            ) from error
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise self._plain_rpc_error(error, sent=sent) from error
            raise await self._explain_not_found(job) from error

    def _plain_rpc_error(self, error: RPCError, *, sent: str | None = None) -> LanewayClientError:
        """Temporal's RPC error in plain words: unreachable, fate unknown (`sent` names what
        was sent), or refused."""
        if error.status in _NO_ANSWER:
            if sent is not None:
                return self._fate_unknown(sent, error.message or error.status.name.lower())
            return TemporalUnreachable(
                f"cannot reach Temporal at {self.settings.temporal_address} "
                f"({error.message or 'no answer'}): start it (`laneway dev`) or set "
                "LANEWAY_TEMPORAL_ADDRESS; then try again"
            )
        return TemporalRefused(f"Temporal refused the call: {error.message}")

    def _fate_unknown(self, sent: str, why: str) -> ActionFateUnknown:
        return ActionFateUnknown(
            f"{sent} was sent to Temporal at {self.settings.temporal_address} and no answer "
            f"came ({why}): it may or may not have been taken; check the job's status "
            "before sending it again"
        )

    async def _explain_not_found(self, job: WorkflowHandle[Any, Any]) -> LanewayClientError:
        """NOT_FOUND means either no such job, or (for an action) a job that has ended."""
        try:
            described = await job.describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return JobNotFoundError(f"no job {job.id}")
            return self._plain_rpc_error(error)
        if described.status == WorkflowExecutionStatus.RUNNING:
            return LanewayClientError(f"job {job.id} is running but could not be reached")
        status = described.typed_search_attributes.get(LANEWAY_STATUS) or "closed"
        return JobActionRefused(
            f"job {job.id} has ended ({status}); it takes no more actions but archive"
        )


async def read_outcome(handle: WorkflowHandle[Any, Any], outcome_type: type[M]) -> M:
    """How the job ended, whatever its close status (`laneway.lifecycle`): a completed job's
    result, a failed or expired job's failure details, a canceled job's `outcome` query."""
    try:
        return outcome_type.model_validate(await handle.result())
    except WorkflowFailureError as error:
        cause = error.cause
        if isinstance(cause, ApplicationError) and cause.type in FAILURE_TYPES.values():
            details = cause.details
            if details:
                return outcome_type.model_validate(details[0])
        if isinstance(cause, CancelledError):
            try:
                return outcome_type.model_validate(await handle.query("outcome"))
            except WorkflowQueryFailedError:
                pass
        raise


def _said(failure: BaseException | None) -> str:
    """A Temporal failure's own words: `str()` of an ApplicationError puts its type (a
    CamelCase name such as ActionNotAllowedNow) in front of the message."""
    if isinstance(failure, FailureError):
        return failure.message
    return str(failure) if failure is not None else "no reason given"


_ENDED_WITHOUT_SUCCESS = {
    ProductStatus.FAILED: "failed",
    ProductStatus.EXPIRED: "expired",
    ProductStatus.CANCELED: "was canceled",
}


def _failure_of(job_id: str, status: ProductStatus, reason: str | None) -> str | None:
    """`job <id> failed: <reason>` for a job that failed, expired or was canceled; else None."""
    ended = _ENDED_WITHOUT_SUCCESS.get(status)
    if ended is None:
        return None
    return f"job {job_id} {ended}: {reason}" if reason else f"job {job_id} {ended}"


def _ended_without_success(job: JobRecord, events: list[JobEvent]) -> str | None:
    """What `_failure_of` says, from the ledger: the reason is the note of the latest move
    to the job's status (the ledger hears of every status change before anyone sees it)."""
    reasons = [event.note for event in events if event.to_status == job.status]
    return _failure_of(job.job_id, job.status, reasons[-1] if reasons else None)


E = TypeVar("E", ProductStatus, Lane, Action)


def _known(kind: type[E], value: E | str, what: str) -> E:
    """`value` as a member of `kind`, or an error listing the values that exist."""
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise LanewayClientError(f"unknown {what} {value!r}; use one of: {choices}") from None
