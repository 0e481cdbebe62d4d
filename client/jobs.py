"""The Python client for backend services: start background jobs, follow them, act on them.

    client = await LanewayClient.connect(settings)
    job_id = await client.start_background_job(spec)      # returns at once
    view = await client.status(job_id)                     # product status, cost, actions
    await client.approve(job_id, reviewer, "looks right")  # returns once the job moved on
    outcome = await client.wait(job_id)                    # how the job ended
    text = client.fetch_result(job_id)                     # the output, from the result store

A job is one Temporal workflow; its job id is the workflow id. Every control action names an
`Actor` (who, which workspace, which roles) as the calling service authenticated them; the
job's workflow refuses an action that actor may not take with a plain sentence, raised here
as `JobActionRefused`. Every error this client raises is a `LanewayClientError`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import BinaryIO, TypeVar

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from activities.artifacts import ArtifactStore
from activities.ledger import Ledger
from activities.ledger.migrate import current_revision
from laneway.background import Actor, BackgroundJobInput, ControlRequest, JobOutcome, JobView
from laneway.batch import BatchJobInput, BatchJobSpec, BatchOutcome, BatchProgress
from laneway.jobs import ArtifactRef, JobSpec
from laneway.settings import Settings
from workers.temporal_client import connect
from workflows.background_job import BackgroundJobWorkflow
from workflows.batch_job import BatchJobWorkflow
from workflows.search_attributes import LANEWAY_STATUS

JobHandle = WorkflowHandle[BackgroundJobWorkflow, JobOutcome]
BatchHandle = WorkflowHandle[BatchJobWorkflow, BatchOutcome]
ControlUpdate = UpdateMethodMultiParam[[BackgroundJobWorkflow, ControlRequest], JobView]
T = TypeVar("T")


class LanewayClientError(Exception):
    """Base of every error this client raises; the message is meant for a person."""


class JobNotFoundError(LanewayClientError, LookupError):
    """No job with this id exists (or Temporal removed it after its retention period)."""


class JobActionRefused(LanewayClientError):
    """The job refused a control action: wrong actor, wrong status, or the job has ended."""


class ResultNotReady(LanewayClientError):
    """The job exists but its provider response has not produced an output yet."""


class JobStoppedError(LanewayClientError):
    """The job's workflow stopped without an outcome (terminated or cancelled in Temporal)."""


def new_job_id() -> str:
    return f"job-{uuid.uuid4().hex}"


def static_summary(spec: JobSpec) -> str:
    """The one line the Temporal Web UI shows for the job; never any prompt text."""
    return f"{spec.job_type} in {spec.workspace}, requested by {spec.requested_by}"


class LanewayClient:
    """Start and control background jobs on a Laneway deployment.

    Talks to Temporal for everything about a running job, and reads the job ledger and the
    artifact store (both named by `settings`) for stored results.
    """

    def __init__(self, temporal: Client, settings: Settings) -> None:
        """`temporal` must use the pydantic data converter, as `workers.temporal_client`'s."""
        self.temporal = temporal
        self.settings = settings
        self._ledger: Ledger | None = None

    @classmethod
    async def connect(cls, settings: Settings) -> LanewayClient:
        """Connect to the Temporal server and namespace that `settings` name."""
        return cls(await connect(settings), settings)

    # ---- starting and following --------------------------------------------------------

    async def start_background_job(self, spec: JobSpec, *, job_id: str | None = None) -> str:
        """Start a background job and return its id without waiting for the provider.

        Pass your own `job_id` to make the start safe to repeat: starting an id that already
        exists, running or ended, returns that job and starts nothing (the first spec wins).
        Without one, a fresh `job-<hex>` id is made.
        """
        job = BackgroundJobInput(job_id=new_job_id() if job_id is None else job_id, spec=spec)
        # An id that ran before and has ended is still the same job: nothing new starts.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self.temporal.start_workflow(
                BackgroundJobWorkflow.run,
                job,
                id=job.job_id,
                task_queue=self.settings.task_queue,
                # Running: hand back the same job. Ended: refuse a second run of the same id.
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=static_summary(spec),
            )
        return job.job_id

    async def status(self, job_id: str) -> JobView:
        """The job as people see it: status, reason, attempts, cost and allowed actions.

        Answered by the job's workflow, so a worker must be serving the task queue.
        """
        return await self._call(job_id, lambda job: job.query(BackgroundJobWorkflow.status))

    async def wait(self, job_id: str) -> JobOutcome:
        """Wait until the job ends (completed, failed, canceled or expired) and say how.

        A job in review waits for a reviewer, and a failed job stays open for a retry until
        its hold ends, so this can take as long as those windows; use `status` to look in.
        """
        return await self._call(job_id, lambda job: job.result())

    # ---- batch jobs --------------------------------------------------------------------------

    def store_batch_input(self, source: Path | BinaryIO) -> ArtifactRef:
        """Stream a JSONL file into the artifact store (constant memory); use the reference
        as `BatchJobSpec.input`. A blocking call: from async code run it in a thread."""
        store = ArtifactStore(self.settings.artifacts_path)
        if isinstance(source, Path):
            return store.put_file(source, "application/jsonl")
        return store.put_stream(source, "application/jsonl")

    async def start_batch_job(self, spec: BatchJobSpec, *, job_id: str | None = None) -> str:
        """Start a batch job and return its id at once; safe to repeat with your own `job_id`.

        A plan estimated above the workspace's threshold (settings.batch_plan_approval_usd)
        waits in needs_review for a reviewer before anything reaches the provider.
        """
        job = BatchJobInput(
            job_id=new_job_id() if job_id is None else job_id,
            spec=spec,
            plan_approval_above_usd=self.settings.batch_plan_approval_usd.get(spec.workspace),
        )
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self.temporal.start_workflow(
                BatchJobWorkflow.run,
                job,
                id=job.job_id,
                task_queue=self.settings.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=(
                    f"batch {spec.job_type} in {spec.workspace}, requested by {spec.requested_by}"
                ),
            )
        return job.job_id

    async def batch_status(self, job_id: str) -> BatchProgress:
        """Records total, succeeded, failed and pending, the round, estimate and actions."""
        handle: BatchHandle = self.temporal.get_workflow_handle(job_id)
        return await self._call(job_id, lambda _: handle.query(BatchJobWorkflow.status))

    async def wait_batch(self, job_id: str) -> BatchOutcome:
        """Wait until the batch job ends; its report names the results and errors files."""
        handle: BatchHandle = self.temporal.get_workflow_handle(job_id, result_type=BatchOutcome)
        return await self._call(job_id, lambda _: handle.result())

    def read_artifact(self, ref: ArtifactRef) -> Iterator[bytes]:
        """The bytes of a stored file (e.g. a batch report's `results`), in chunks, verified."""
        return ArtifactStore(self.settings.artifacts_path).iter_chunks(ref, verify=True)

    # ---- control actions: each one audited with who and why -------------------------------

    async def approve(self, job_id: str, actor: Actor, note: str = "") -> JobView:
        """Approve a job in review (actor: a reviewer of its workspace, not its requester).

        Returns once the side effect, if any, has run and the job is completed.
        """
        return await self._control(job_id, BackgroundJobWorkflow.approve, actor, note)

    async def reject(self, job_id: str, actor: Actor, note: str = "") -> JobView:
        """Reject a job in review; it ends canceled with the note as its reason."""
        return await self._control(job_id, BackgroundJobWorkflow.reject, actor, note)

    async def cancel(self, job_id: str, actor: Actor, note: str = "") -> JobView:
        """Stop a job before its side effect runs; the provider's response is cancelled too.

        Allowed to the requester and to the workspace's operators and reviewers.
        """
        return await self._control(job_id, BackgroundJobWorkflow.cancel, actor, note)

    async def retry(self, job_id: str, actor: Actor, note: str = "") -> JobView:
        """Give a failed job a new provider attempt; returns once it is queued again."""
        return await self._control(job_id, BackgroundJobWorkflow.retry, actor, note)

    async def escalate(self, job_id: str, actor: Actor, note: str = "") -> JobView:
        """Flag a job in review for attention; it keeps its place in the review queue."""
        return await self._control(job_id, BackgroundJobWorkflow.escalate, actor, note)

    async def archive(self, job_id: str, actor: Actor, note: str = "") -> JobView:
        """Close a failed job nobody will retry, before its hold runs out."""
        return await self._control(job_id, BackgroundJobWorkflow.archive, actor, note)

    # ---- results -------------------------------------------------------------------------

    def fetch_result(self, job_id: str) -> str:
        """The output text of the job's latest attempt, from the result store.

        Available from the moment the provider finished (so also while the job waits for a
        review). Reads the ledger and artifact store directly: a blocking call, so from async
        code run it in a thread (`asyncio.to_thread`).
        """
        ledger = self._open_ledger()
        if ledger is None or ledger.get_job(job_id) is None:
            raise JobNotFoundError(f"no job {job_id} in the result store")
        stored = ledger.get_result(job_id)
        if stored is None:
            raise ResultNotReady(
                f"job {job_id} has no output yet: the provider has not finished; "
                "see status() for where it is"
            )
        if stored.output is None:
            return stored.inline_output or ""
        return ArtifactStore(self.settings.artifacts_path).read_bytes(stored.output).decode()

    def close(self) -> None:
        """Release the ledger's database connections (Temporal's need no closing)."""
        if self._ledger is not None:
            self._ledger.engine.dispose()
            self._ledger = None

    # ---- internals -----------------------------------------------------------------------

    def _open_ledger(self) -> Ledger | None:
        """The ledger, or None while no worker has created its schema (so it has no jobs).

        A client only reads: creating or migrating the schema is the workers' job.
        """
        if self._ledger is None and current_revision(self.settings.ledger_url) is not None:
            self._ledger = Ledger.from_url(self.settings.ledger_url)
        return self._ledger

    async def _control(
        self, job_id: str, update: ControlUpdate, actor: Actor, note: str
    ) -> JobView:
        request = ControlRequest(actor=actor, note=note)

        async def send(job: JobHandle) -> JobView:
            return await job.execute_update(update, request)

        return await self._call(job_id, send)

    async def _call(self, job_id: str, action: Callable[[JobHandle], Awaitable[T]]) -> T:
        """Run `action` on the job's workflow, turning Temporal's errors into plain ones."""
        job: JobHandle = self.temporal.get_workflow_handle_for(BackgroundJobWorkflow.run, job_id)
        try:
            return await action(job)
        except WorkflowUpdateFailedError as error:
            # The validator's (or the handler's) own sentence, e.g. "alice requested this
            # job and cannot approve it".
            raise JobActionRefused(str(error.cause)) from error
        except WorkflowQueryFailedError as error:
            raise LanewayClientError(f"job {job_id} could not answer: {error.message}") from error
        except WorkflowFailureError as error:
            raise JobStoppedError(
                f"job {job_id} stopped without an outcome: {error.cause}"
            ) from error
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            raise await self._explain_not_found(job) from error

    async def _explain_not_found(self, job: JobHandle) -> LanewayClientError:
        """NOT_FOUND means either no such job, or (for an action) a job that has ended."""
        try:
            described = await job.describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return JobNotFoundError(f"no job {job.id}")
            raise
        if described.status == WorkflowExecutionStatus.RUNNING:
            return LanewayClientError(f"job {job.id} is running but could not be reached")
        status = described.typed_search_attributes.get(LANEWAY_STATUS) or "closed"
        return JobActionRefused(f"job {job.id} has ended ({status}); it takes no more actions")
