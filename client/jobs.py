"""The Python client for backend services: start background jobs and act on them.

    client = await LanewayClient.connect(settings)
    job_id = await client.start_background_job(spec)
    view = await client.status(job_id)            # product status, cost, allowed actions
    await client.approve(job_id, reviewer, "looks right")
    outcome = await client.wait(job_id)
    text = client.fetch_result(job_id)

Every control action names an `Actor`; the job's workflow refuses an action the actor may
not take (wrong workspace or role, approving one's own job, an action the job's status does
not allow) with a plain message, raised here as `JobActionRefused`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from activities.artifacts import ArtifactStore
from activities.ledger import Ledger, upgrade_to_head
from laneway.background import Actor, BackgroundJobInput, ControlRequest, JobOutcome, JobView
from laneway.jobs import JobSpec
from laneway.settings import Settings
from workers.temporal_client import connect
from workflows.background_job import BackgroundJobWorkflow

JobHandle = WorkflowHandle[BackgroundJobWorkflow, JobOutcome]
T = TypeVar("T")


class JobNotFoundError(LookupError):
    """No job with this id exists (or it was removed after its retention period)."""


class JobActionRefused(PermissionError):
    """The job refused a control action; the message says why."""


def new_job_id() -> str:
    return f"job-{uuid.uuid4().hex}"


def static_summary(spec: JobSpec) -> str:
    """What the Temporal Web UI shows for the job: never prompt text."""
    return f"{spec.job_type} for {spec.workspace}, requested by {spec.requested_by}"


class LanewayClient:
    def __init__(self, temporal: Client, settings: Settings) -> None:
        self.temporal = temporal
        self.settings = settings
        self._ledger_instance: Ledger | None = None

    @classmethod
    async def connect(cls, settings: Settings) -> LanewayClient:
        return cls(await connect(settings), settings)

    async def start_background_job(self, spec: JobSpec, *, job_id: str | None = None) -> str:
        """Start a background job and return its id; starting the same id again is a no-op."""
        job = BackgroundJobInput(job_id=job_id or new_job_id(), spec=spec)
        await self.temporal.start_workflow(
            BackgroundJobWorkflow.run,
            job,
            id=job.job_id,
            task_queue=self.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=static_summary(spec),
        )
        return job.job_id

    async def status(self, job_id: str) -> JobView:
        """The job's product view: status, attempts, provider ids, cost, allowed actions."""
        return await self._call(job_id, lambda h: h.query(BackgroundJobWorkflow.status))

    async def approve(self, job_id: str, actor: Actor, note: str = "") -> JobView:
        """Approve the output of a job in review; its side effect runs once, then it completes."""
        return await self._update(job_id, BackgroundJobWorkflow.approve, actor, note)

    async def reject(self, job_id: str, actor: Actor, note: str = "") -> JobView:
        """Reject the output of a job in review; the job ends with the note as its reason."""
        return await self._update(job_id, BackgroundJobWorkflow.reject, actor, note)

    async def cancel(self, job_id: str, actor: Actor, note: str = "") -> JobView:
        """Stop a job before its side effect; the provider's response is cancelled too."""
        return await self._update(job_id, BackgroundJobWorkflow.cancel, actor, note)

    async def retry(self, job_id: str, actor: Actor, note: str = "") -> JobView:
        """Start a new provider attempt for a failed job."""
        return await self._update(job_id, BackgroundJobWorkflow.retry, actor, note)

    async def escalate(self, job_id: str, actor: Actor, note: str = "") -> JobView:
        """Flag the job for attention; it keeps its place."""
        return await self._update(job_id, BackgroundJobWorkflow.escalate, actor, note)

    async def archive(self, job_id: str, actor: Actor, note: str = "") -> JobView:
        """Close a failed job that nobody will retry."""
        return await self._update(job_id, BackgroundJobWorkflow.archive, actor, note)

    async def wait(self, job_id: str) -> JobOutcome:
        """Wait until the job ends and return how it ended."""
        return await self._call(job_id, lambda h: h.result())

    def fetch_result(self, job_id: str) -> str:
        """The output text of the job's latest attempt, from the result store."""
        stored = self._ledger().get_result(job_id)
        if stored is None:
            raise JobNotFoundError(f"job {job_id} has no stored result (yet)")
        if stored.output is None:
            return stored.inline_output or ""
        return ArtifactStore(self.settings.artifacts_path).read_bytes(stored.output).decode()

    def _ledger(self) -> Ledger:
        if self._ledger_instance is None:
            upgrade_to_head(self.settings.ledger_url)  # idempotent; a new store may be empty
            self._ledger_instance = Ledger.from_url(self.settings.ledger_url)
        return self._ledger_instance

    async def _update(self, job_id: str, update: Any, actor: Actor, note: str) -> JobView:
        request = ControlRequest(actor=actor, note=note)

        async def send(handle: JobHandle) -> JobView:
            view: JobView = await handle.execute_update(update, request)
            return view

        return await self._call(job_id, send)

    async def _call(self, job_id: str, action: Callable[[JobHandle], Awaitable[T]]) -> T:
        handle: JobHandle = self.temporal.get_workflow_handle_for(BackgroundJobWorkflow.run, job_id)
        try:
            return await action(handle)
        except WorkflowUpdateFailedError as error:
            raise JobActionRefused(str(error.cause or error)) from error
        except WorkflowQueryFailedError as error:
            raise JobActionRefused(str(error)) from error
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise JobNotFoundError(f"no job {job_id}") from error
            raise
