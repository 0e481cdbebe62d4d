"""JobLifecycle: the one job lifecycle that every lane's workflow is built on.

A lane's workflow subclasses it and keeps only what is particular to the lane: how it records
the job, the work it does (`_work`), what it stops when the job ends (`_before_end`), its view
and its outcome. Everything else lives here, once:

- the six control Updates and their validators, refusing by `laneway.status.refusal_reason`,
  the same function that computes the `allowed_actions` every surface shows;
- the `status` query and the `provider_event` signal;
- status changes: the ledger's audit trail first, then search attributes and current details;
- the review gate, with its window and its expiry action;
- the failed hold (a failed job stays open for a retry or an archive until the hold ends);
- the side effect, at most once, behind the gate;
- the end: a terminal product status, and a close status that matches it
  (`laneway.lifecycle`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from laneway.background import ControlRequest
    from laneway.jobs import ReviewExpiryAction
    from laneway.lifecycle import FAILURE_TYPES, CloseAsCanceledRequest, JobEnd, JobState
    from laneway.permissions import ACTION_FORBIDDEN, ACTION_NOT_ALLOWED_NOW, refusal
    from laneway.status import (
        Action,
        JobFacts,
        Lane,
        ProductStatus,
        allowed_actions,
        refusal_reason,
    )
    from workflows.activity_types import close_as_canceled
    from workflows.job_common import (
        HEARTBEAT_TIMEOUT,
        LEDGER_CALL_TIMEOUT,
        LEDGER_RETRY,
        AuditTrail,
        JobEnds,
    )
    from workflows.search_attributes import (
        LANEWAY_JOB_TYPE,
        LANEWAY_LANE,
        LANEWAY_STATUS,
        LANEWAY_WORKSPACE,
    )
    from workflows.waiting import wait_for

SIDE_EFFECT_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=20)
# If the cancellation a canceled job asked for never arrives, it closes anyway (Completed,
# its status still canceled) rather than stay open.
CANCELLATION_WAIT = timedelta(minutes=5)

RequestT = TypeVar("RequestT")
ResultT = TypeVar("ResultT")
OutcomeT = TypeVar("OutcomeT", bound=BaseModel)


class LifecycleSpec(Protocol):
    """What the lifecycle reads of a lane's job spec."""

    @property
    def job_type(self) -> str: ...
    @property
    def workspace(self) -> str: ...
    @property
    def requested_by(self) -> str: ...
    @property
    def review_deadline(self) -> timedelta: ...
    @property
    def review_expiry_action(self) -> ReviewExpiryAction: ...


class JobLifecycle:
    def _init_lifecycle(
        self, lane: Lane, job_id: str, spec: LifecycleSpec, failed_hold: timedelta
    ) -> None:
        self._lane = lane
        self._job_id = job_id
        self._spec = spec
        self._failed_hold = failed_hold
        self._status = ProductStatus.QUEUED
        self._reason: str | None = None
        self._created_at = workflow.now()
        self._updated_at = self._created_at
        self._audit = AuditTrail(job_id)
        self._provider_ids: list[str] = []
        self._escalated = False
        self._retry_possible = True
        self._archived = False
        self._decision: tuple[str, ControlRequest] | None = None
        self._cancel_request: ControlRequest | None = None
        self._retry_request: ControlRequest | None = None
        self._archive_request: ControlRequest | None = None
        self._side_effect_started = False
        self._side_effect_ran = False
        self._ending = False  # the end has begun: only archive is left to take
        self._ended = False  # the terminal status is recorded

    # ---- what a lane provides ------------------------------------------------------------------

    async def _record_job(self) -> None:
        """Write the job record to the ledger, before any provider call."""
        raise NotImplementedError

    async def _work(self) -> JobEnds:
        """The lane's work, up to the job's completion; other endings raise `JobEnds`."""
        raise NotImplementedError

    async def _before_end(self, end: JobEnds) -> JobEnds:
        """Stop provider work still running and keep what it produced; may amend the reason."""
        return end

    async def _on_provider_event(self, provider_id: str) -> None:
        """A webhook said one of the job's provider objects changed."""

    def _view(self) -> JobState:
        raise NotImplementedError

    def _outcome(self) -> JobEnd:
        raise NotImplementedError

    def _detail_parts(self) -> list[str]:
        """The lane's part of the Web UI's current details (progress, provider ids, cost)."""
        return []

    # ---- the run ---------------------------------------------------------------------------

    async def _run_lifecycle(self, outcome_type: type[OutcomeT]) -> OutcomeT:
        """The whole job: record, work, end, close. A lane's `run` returns this."""
        try:
            await self._start()
            end = await self._work()
        except JobEnds as raised:
            end = raised
        except (asyncio.CancelledError, ActivityError, ChildWorkflowError) as error:
            if not is_cancelled_exception(error):
                # A call that failed for good: the job ends failed and says why, never a
                # closed workflow behind an open status.
                end = JobEnds(ProductStatus.FAILED, f"Laneway gave up: {failure_cause(error)}")
            else:
                # Cancelled through Temporal: the provider and the ledger still hear of it.
                await self._end(
                    JobEnds(ProductStatus.CANCELED, "cancelled through Temporal", "temporal")
                )
                raise
        await self._end(end)
        # Let the Update that ended the job (approve, cancel, ...) answer before it closes.
        await workflow.wait_condition(workflow.all_handlers_finished)
        outcome = await self._close()
        assert isinstance(outcome, outcome_type)
        return outcome

    async def _start(self) -> None:
        if self._audit.events:
            return  # a continued run: the job is recorded already
        workflow.upsert_search_attributes(
            [
                LANEWAY_STATUS.value_set(self._status.value),
                LANEWAY_LANE.value_set(self._lane.value),
                LANEWAY_JOB_TYPE.value_set(self._spec.job_type),
                LANEWAY_WORKSPACE.value_set(self._spec.workspace),
            ]
        )
        await self._record_job()
        self._set_details()

    async def _end(self, end: JobEnds) -> None:
        self._ending = True
        self._set_details()
        try:
            end = await self._before_end(end)
        except ActivityError as error:
            if is_cancelled_exception(error):
                raise
            # Stopping provider work failed for good: the job still ends, and says so.
            end = JobEnds(
                end.status,
                f"{end.reason}; could not stop the provider's work: {failure_cause(error)}",
                end.actor,
            )
        await self._set_status(end.status, reason=end.reason, actor=end.actor)
        self._ended = True

    async def _close(self) -> JobEnd:
        """Close with the Temporal status that matches the product status."""
        outcome = self._outcome()
        failure_type = FAILURE_TYPES.get(self._status)
        if failure_type is not None:
            raise ApplicationError(
                self._reason or self._status.value, outcome, type=failure_type, non_retryable=True
            )
        if self._status is ProductStatus.CANCELED:
            await self._close_as_canceled()
        return outcome

    async def _close_as_canceled(self) -> None:
        """Ask Temporal to cancel this run; the cancellation then closes it Canceled."""
        info = workflow.info()
        try:
            await workflow.execute_activity(
                close_as_canceled,
                CloseAsCanceledRequest(workflow_id=info.workflow_id, run_id=info.run_id),
                start_to_close_timeout=LEDGER_CALL_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=10),
            )
        except ActivityError as error:
            if is_cancelled_exception(error):
                raise asyncio.CancelledError from error  # the cancellation it asked for
            workflow.logger.warning(
                "could not close as canceled", extra={"job_id": self._job_id, "error": str(error)}
            )
            return
        await wait_for(lambda: False, CANCELLATION_WAIT)
        workflow.logger.warning("no cancellation arrived", extra={"job_id": self._job_id})

    # ---- status changes --------------------------------------------------------------------

    async def _set_status(
        self,
        status: ProductStatus,
        *,
        reason: str | None,
        actor: str = "laneway",
        note: str = "",
        kind: str = "status_changed",
    ) -> None:
        # The ledger hears first: a status people can see is always one the audit trail has.
        await self._audit.record(
            kind=kind,
            actor=actor,
            note=note or (reason or ""),
            to_status=status,
            ends_job=self._ending,
        )
        self._status, self._reason = status, reason
        self._updated_at = workflow.now()
        workflow.upsert_search_attributes([LANEWAY_STATUS.value_set(status.value)])
        self._set_details()
        workflow.logger.info("job status", extra={"job_id": self._job_id, "status": status.value})

    async def _escalate(self, actor: str, note: str) -> None:
        self._escalated = True
        self._set_details()
        await self._audit.record(kind="escalated", actor=actor, note=note)

    def _set_details(self) -> None:
        """The Web UI's current details: where the job is and what one can do now."""
        parts = [f"**{self._status.value}**", *self._detail_parts()]
        if self._escalated:
            parts.append("escalated")
        if self._reason:
            parts.append(self._reason)
        actions = ", ".join(self._allowed_actions()) or "none"
        workflow.set_current_details(" · ".join(parts) + f"\n\nallowed actions: {actions}")

    # ---- the review gate, the failed hold, the side effect -----------------------------------

    async def _review(self, gate: str, reason: str) -> None:
        """Wait for a reviewer's verdict on `gate`; returns when approved."""
        self._decision = None
        await self._set_status(ProductStatus.NEEDS_REVIEW, reason=reason)
        decided = await wait_for(self._decided_or_canceled, self._spec.review_deadline)
        if not decided and self._spec.review_expiry_action == ReviewExpiryAction.ESCALATE:
            await self._escalate("laneway", "the review window passed without a decision")
            decided = await wait_for(self._decided_or_canceled, self._spec.review_deadline)
        self._raise_if_cancel_requested()
        if self._decision is None:
            raise JobEnds(ProductStatus.EXPIRED, f"nobody reviewed the {gate} before the deadline")
        verdict, request = self._decision
        if verdict == "rejected":
            subject = "" if gate == "job" else f"{gate} "
            raise JobEnds(
                ProductStatus.CANCELED,
                f"{subject}rejected by {request.actor.id}: {request.note}".rstrip(": "),
                request.actor.id,
            )
        note = request.note if gate == "job" else f"{gate}: {request.note}"
        await self._audit.record(kind="approved", actor=request.actor.id, note=note)

    async def _hold_failed(self, status: ProductStatus, reason: str, retry_note: str) -> None:
        """A failed job stays open for an operator's retry or archive until the hold ends.

        Returns when an operator retried (the job is queued again); otherwise the job ends.
        A job no retry can help (`_retry_possible` False) ends at once.
        """
        if not self._retry_possible:
            raise JobEnds(status, reason)
        await self._set_status(status, reason=reason)
        self._retry_request = None
        await wait_for(
            lambda: self._retry_request is not None or self._archive_request is not None,
            self._failed_hold,
        )
        archive = self._archive_request
        if archive is not None:
            await self._record_archived(archive)
            raise JobEnds(status, reason, archive.actor.id)
        retry = self._retry_request
        if retry is None:
            raise JobEnds(status, reason)
        await self._set_status(
            ProductStatus.QUEUED,
            reason=None,
            actor=retry.actor.id,
            note=retry.note or retry_note,
            kind="retried",
        )

    async def _run_side_effect(
        self,
        side_effect: Callable[[RequestT], Awaitable[str]],
        request: RequestT,
        start_to_close: timedelta,
    ) -> None:
        """The approved side effect, at most once (the activity claims it by job id)."""
        self._side_effect_started = True
        self._set_details()
        try:
            await workflow.execute_activity(
                side_effect,
                request,
                start_to_close_timeout=start_to_close,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=SIDE_EFFECT_RETRY,
            )
        except ActivityError as error:
            raise JobEnds(
                ProductStatus.FAILED, f"the approved side effect failed: {failure_cause(error)}"
            ) from None
        self._side_effect_ran = True

    async def _record_archived(self, request: ControlRequest) -> None:
        self._archived = True
        await self._audit.record(kind="archived", actor=request.actor.id, note=request.note)

    # ---- small decisions -------------------------------------------------------------------

    def _facts(self) -> JobFacts:
        return JobFacts(
            status=self._status,
            open=not self._ending and self._cancel_request is None,
            escalated=self._escalated,
            side_effect_started=self._side_effect_started,
            retry_possible=self._retry_possible,
            archived=self._archived or self._archive_request is not None,
            decision=None if self._decision is None else self._decision[0],
        )

    def _allowed_actions(self) -> list[str]:
        return allowed_actions(self._facts())

    def _view_fields(self) -> dict[str, Any]:
        """What every lane's view says of a job; the lane adds its progress and cost."""
        spec = self._spec
        return {
            "job_id": self._job_id,
            "status": self._status,
            "lane": self._lane.value,
            "job_type": spec.job_type,
            "workspace": spec.workspace,
            "requested_by": spec.requested_by,
            "provider_ids": list(self._provider_ids),
            "created_at": self._created_at,
            "updated_at": self._updated_at,
            "reason": self._reason,
            "allowed_actions": self._allowed_actions(),
            "facts": self._facts(),
        }

    def _outcome_fields(self) -> dict[str, Any]:
        """What every lane's outcome says of how the job ended; the lane adds its results."""
        return {
            "job_id": self._job_id,
            "status": self._status,
            "reason": self._reason,
            "side_effect_ran": self._side_effect_ran,
        }

    async def _ledger_call(
        self, call: Callable[[RequestT], Awaitable[ResultT]], arg: RequestT
    ) -> ResultT:
        """A ledger activity: short, retried until the ledger answers."""
        return await workflow.execute_activity(
            call, arg, start_to_close_timeout=LEDGER_CALL_TIMEOUT, retry_policy=LEDGER_RETRY
        )

    def _decided_or_canceled(self) -> bool:
        return self._decision is not None or self._cancel_request is not None

    def _cancel_reason(self) -> str:
        request = self._cancel_request
        assert request is not None
        return f"cancelled by {request.actor.id}: {request.note}".rstrip(": ")

    def _raise_if_cancel_requested(self) -> None:
        request = self._cancel_request
        if request is not None:
            raise JobEnds(ProductStatus.CANCELED, self._cancel_reason(), request.actor.id)

    def _check(self, request: ControlRequest, action: Action) -> None:
        """An update validator: may this actor, and does the job take the action now."""
        spec = self._spec
        forbidden = refusal(
            request.actor,
            action.value,
            workspace=spec.workspace,
            requested_by=spec.requested_by,
        )
        if forbidden is not None:
            raise ApplicationError(forbidden, type=ACTION_FORBIDDEN)
        refused = refusal_reason(action, self._facts())
        if refused is not None:
            allowed = ", ".join(self._allowed_actions()) or "nothing"
            raise ApplicationError(
                f"{refused}; allowed now: {allowed}", type=ACTION_NOT_ALLOWED_NOW
            )

    # ---- signals, updates, queries ---------------------------------------------------------

    @workflow.signal
    async def provider_event(self, provider_id: str) -> None:
        """A webhook said something happened to one of this job's provider objects."""
        await self._on_provider_event(provider_id)

    @workflow.update
    async def approve(self, request: ControlRequest) -> JobState:
        self._decision = ("approved", request)
        await workflow.wait_condition(lambda: self._status != ProductStatus.NEEDS_REVIEW)
        return self.status()

    @approve.validator
    def _validate_approve(self, request: ControlRequest) -> None:
        self._check(request, Action.APPROVE)

    @workflow.update
    async def reject(self, request: ControlRequest) -> JobState:
        self._decision = ("rejected", request)
        await workflow.wait_condition(lambda: self._ended)
        return self.status()

    @reject.validator
    def _validate_reject(self, request: ControlRequest) -> None:
        self._check(request, Action.REJECT)

    @workflow.update
    async def cancel(self, request: ControlRequest) -> JobState:
        self._cancel_request = request
        await workflow.wait_condition(lambda: self._ended)
        return self.status()

    @cancel.validator
    def _validate_cancel(self, request: ControlRequest) -> None:
        self._check(request, Action.CANCEL)

    @workflow.update
    async def retry(self, request: ControlRequest) -> JobState:
        self._retry_request = request
        await workflow.wait_condition(
            lambda: self._status not in (ProductStatus.FAILED, ProductStatus.EXPIRED) or self._ended
        )
        return self.status()

    @retry.validator
    def _validate_retry(self, request: ControlRequest) -> None:
        self._check(request, Action.RETRY)

    @workflow.update
    async def archive(self, request: ControlRequest) -> JobState:
        """Close a failed job nobody will retry before its hold runs out; on a job that is
        ending, mark it archived."""
        if self._ending:
            await self._record_archived(request)
        else:
            self._archive_request = request
        await workflow.wait_condition(lambda: self._ended)
        return self.status()

    @archive.validator
    def _validate_archive(self, request: ControlRequest) -> None:
        self._check(request, Action.ARCHIVE)

    @workflow.update
    async def escalate(self, request: ControlRequest) -> JobState:
        await self._escalate(request.actor.id, request.note or "escalated by an operator")
        return self.status()

    @escalate.validator
    def _validate_escalate(self, request: ControlRequest) -> None:
        self._check(request, Action.ESCALATE)

    @workflow.query
    def status(self) -> JobState:
        return self._view()

    @workflow.query
    def outcome(self) -> JobEnd:
        """How the job ended (or stands): what a canceled job's closed workflow still tells."""
        return self._outcome()


def failure_cause(error: BaseException) -> str:
    """What went wrong, in the failing code's own words, without the SDK's wrapping."""
    cause: BaseException | None = error
    while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause is not None:
        cause = cause.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause or error)
