"""BackgroundJobWorkflow: one tracked product job on OpenAI's background Responses mode.

The job record is written before the provider is called; the provider is followed by a poll
activity whose retries (server-side durable timers with backoff) do the waiting, so a job that
waits for hours adds no history while nothing changes; a `provider_event` signal (the webhook
path) cuts a wait short. Every change of the product status goes to the ledger, the search
attributes and the current details. A side effect runs only behind the approval gate.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from laneway.background import (
        CANCEL_RESPONSE,
        GET_RESPONSE,
        PROVIDER_REJECTED,
        RECORD_JOB,
        RESPONSE_UNCHANGED,
        RUN_SIDE_EFFECT,
        START_RESPONSE,
        STORE_RESULT,
        WAIT_FOR_RESPONSE_CHANGE,
        BackgroundJobInput,
        ControlRequest,
        JobOutcome,
        JobView,
        ResponseSnapshot,
        ResultSummary,
        SideEffectRequest,
        StartResponseRequest,
        StoreResultRequest,
        WaitForChangeRequest,
        describe_duration,
    )
    from laneway.jobs import ReviewExpiryAction
    from laneway.permissions import ACTION_NOT_ALLOWED_NOW
    from laneway.status import (
        TERMINAL_PRODUCT_STATUSES,
        TERMINAL_RESPONSE_STATUSES,
        Lane,
        ProductStatus,
        allowed_actions,
        response_reason,
    )
    from workflows.job_common import (
        LEDGER_CALL_TIMEOUT,
        LEDGER_RETRY,
        PROVIDER_CALL_TIMEOUT,
        PROVIDER_RETRY,
        AuditTrail,
        JobEnds,
        check_control,
        wait_for,
    )
    from workflows.search_attributes import (
        LANEWAY_JOB_TYPE,
        LANEWAY_LANE,
        LANEWAY_PROVIDER_IDS,
        LANEWAY_STATUS,
        LANEWAY_WORKSPACE,
    )

TERMINAL = TERMINAL_PRODUCT_STATUSES
PROVIDER_TERMINAL = TERMINAL_RESPONSE_STATUSES


class _ProviderDeadlinePassed(Exception):
    pass


@workflow.defn
class BackgroundJobWorkflow:
    @workflow.init
    def __init__(self, job: BackgroundJobInput) -> None:
        self._job = job
        self._status = ProductStatus.QUEUED
        self._reason: str | None = None
        self._attempts = 0
        self._provider_ids: list[str] = []
        self._response: ResponseSnapshot | None = None
        self._result: ResultSummary | None = None
        self._created_at = workflow.now()
        self._updated_at = self._created_at
        self._audit = AuditTrail(job.job_id)
        self._escalated = False
        self._provider_event_pending = False
        self._decision: tuple[str, ControlRequest] | None = None
        self._cancel_request: ControlRequest | None = None
        self._retry_request: ControlRequest | None = None
        self._archive_request: ControlRequest | None = None
        self._ended = False
        self._side_effect_started = False
        self._side_effect_ran = False

    # ---- lifecycle -------------------------------------------------------------------------

    @workflow.run
    async def run(self, job: BackgroundJobInput) -> JobOutcome:
        try:
            await self._lifecycle()
        except JobEnds as end:
            await self._end(end)
        except asyncio.CancelledError:
            # Cancelled through Temporal: the provider and the ledger still hear of it.
            await self._end(
                JobEnds(ProductStatus.CANCELED, "cancelled through Temporal", "temporal")
            )
            raise
        # Let the Update that ended the job (approve, cancel, ...) answer before we close.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._outcome()

    async def _lifecycle(self) -> None:
        await self._record_job()
        while True:
            try:
                final = await self._provider_attempt()
            except ActivityError as error:
                await self._hold_failed(self._rejection_reason(error))
                continue
            if final.status == "completed" or (
                final.status == "incomplete" and self._review_wanted(final)
            ):
                break
            await self._hold_failed(self._failure_reason(final))
        await self._review_gate(final)
        await self._run_side_effect()
        raise JobEnds(ProductStatus.COMPLETED, self._completion_reason())

    async def _provider_attempt(self) -> ResponseSnapshot:
        """One provider response from start to a terminal provider status."""
        self._attempts += 1
        attempt_started = workflow.now()
        snapshot = await self._start_response()
        deadline = attempt_started + self._job.spec.provider_deadline
        try:
            snapshot = await self._follow(snapshot, deadline)
        except _ProviderDeadlinePassed:
            await self._cancel_provider()
            raise JobEnds(
                ProductStatus.EXPIRED,
                "the provider did not finish within "
                + describe_duration(self._job.spec.provider_deadline),
            ) from None
        if snapshot.status == "cancelled":
            raise JobEnds(ProductStatus.CANCELED, "the response was cancelled at the provider")
        if snapshot.status in ("completed", "incomplete"):
            self._result = await self._store_result(snapshot)
        return snapshot

    async def _follow(self, snapshot: ResponseSnapshot, deadline: datetime) -> ResponseSnapshot:
        while snapshot.status not in PROVIDER_TERMINAL:
            self._raise_if_cancel_requested()
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                raise _ProviderDeadlinePassed
            changed = await self._next_change(snapshot, remaining)
            if changed.status != snapshot.status:
                await self._on_provider_change(changed)
            snapshot = changed
        return snapshot

    async def _next_change(
        self, snapshot: ResponseSnapshot, remaining: timedelta
    ) -> ResponseSnapshot:
        """Wait for the poll activity, a provider event or a cancel request, whichever is first."""
        polling = self._job.polling
        poll = workflow.start_activity(
            WAIT_FOR_RESPONSE_CHANGE,
            WaitForChangeRequest(response_id=snapshot.response_id, last_status=snapshot.status),
            result_type=ResponseSnapshot,
            start_to_close_timeout=PROVIDER_CALL_TIMEOUT,
            schedule_to_close_timeout=remaining,
            retry_policy=RetryPolicy(
                initial_interval=polling.first_interval,
                backoff_coefficient=polling.backoff,
                maximum_interval=polling.max_interval,
                non_retryable_error_types=[PROVIDER_REJECTED],
            ),
        )
        interrupt = asyncio.create_task(
            workflow.wait_condition(
                lambda: self._provider_event_pending or self._cancel_request is not None
            )
        )
        await workflow.wait([poll, interrupt], return_when=asyncio.FIRST_COMPLETED)
        if poll.done():
            interrupt.cancel()
            return await self._poll_result(poll)
        poll.cancel()
        await asyncio.gather(poll, return_exceptions=True)
        self._raise_if_cancel_requested()
        self._provider_event_pending = False
        return await self._get_response(snapshot.response_id)

    @staticmethod
    async def _poll_result(poll: asyncio.Future[ResponseSnapshot]) -> ResponseSnapshot:
        try:
            return await poll
        except ActivityError as error:
            # Out of time: either the timeout itself, or a last "still waiting" attempt whose
            # next retry would fall after the deadline.
            cause = error.cause
            if isinstance(cause, TimeoutError) or (
                isinstance(cause, ApplicationError) and cause.type == RESPONSE_UNCHANGED
            ):
                raise _ProviderDeadlinePassed from error
            raise

    async def _hold_failed(self, reason: str) -> None:
        """A failed attempt stays open for an operator's retry (or archive) until the hold ends."""
        await self._set_status(ProductStatus.FAILED, reason=reason)
        self._retry_request = None
        await wait_for(
            lambda: self._retry_request is not None or self._archive_request is not None,
            self._job.failed_hold,
        )
        archive = self._archive_request
        if archive is not None:
            await self._record(kind="archived", actor=archive.actor.id, note=archive.note)
            raise JobEnds(ProductStatus.FAILED, reason, archive.actor.id)
        if self._retry_request is None:
            raise JobEnds(ProductStatus.FAILED, reason)
        retry = self._retry_request
        await self._set_status(
            ProductStatus.QUEUED,
            reason=None,
            actor=retry.actor.id,
            note=retry.note or f"retry, attempt {self._attempts + 1}",
            kind="retried",
        )

    async def _review_gate(self, final: ResponseSnapshot) -> None:
        if not self._review_wanted(final):
            return
        await self._set_status(ProductStatus.NEEDS_REVIEW, reason="waiting for a reviewer")
        decided = await wait_for(self._decided_or_canceled, self._job.spec.review_deadline)
        if not decided and self._job.spec.review_expiry_action == ReviewExpiryAction.ESCALATE:
            await self._escalate("laneway", "the review window passed without a decision")
            decided = await wait_for(self._decided_or_canceled, self._job.spec.review_deadline)
        self._raise_if_cancel_requested()
        if self._decision is None:
            raise JobEnds(ProductStatus.EXPIRED, "nobody reviewed the job before the deadline")
        verdict, request = self._decision
        if verdict == "rejected":
            raise JobEnds(
                ProductStatus.CANCELED,
                f"rejected by {request.actor.id}: {request.note}".rstrip(": "),
                request.actor.id,
            )
        await self._record(kind="approved", actor=request.actor.id, note=request.note)

    async def _run_side_effect(self) -> None:
        if self._job.spec.side_effect is None or self._result is None:
            return
        self._side_effect_started = True
        try:
            await workflow.execute_activity(
                RUN_SIDE_EFFECT,
                SideEffectRequest(
                    job_id=self._job.job_id, spec=self._job.spec, result=self._result
                ),
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(
                    maximum_interval=timedelta(minutes=1), maximum_attempts=20
                ),
            )
        except ActivityError as error:
            cause = error.cause
            detail = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise JobEnds(
                ProductStatus.FAILED, f"the approved side effect failed: {detail}"
            ) from None
        self._side_effect_ran = True

    async def _end(self, end: JobEnds) -> None:
        if end.status == ProductStatus.CANCELED and self._response is not None:
            await self._cancel_provider()
        await self._set_status(end.status, reason=end.reason, actor=end.actor)
        self._ended = True

    # ---- provider and ledger calls ----------------------------------------------------------

    async def _record_job(self) -> None:
        spec = self._job.spec
        workflow.upsert_search_attributes(
            [
                LANEWAY_STATUS.value_set(self._status.value),
                LANEWAY_LANE.value_set(Lane.BACKGROUND.value),
                LANEWAY_JOB_TYPE.value_set(spec.job_type),
                LANEWAY_WORKSPACE.value_set(spec.workspace),
            ]
        )
        await workflow.execute_activity(
            RECORD_JOB,
            self._job,
            start_to_close_timeout=LEDGER_CALL_TIMEOUT,
            retry_policy=LEDGER_RETRY,
        )
        self._set_details()

    async def _start_response(self) -> ResponseSnapshot:
        request = StartResponseRequest(
            job_id=self._job.job_id,
            attempt=self._attempts,
            idempotency_key=f"{workflow.info().workflow_id}/attempt-{self._attempts}",
            spec=self._job.spec,
        )
        snapshot: ResponseSnapshot = await workflow.execute_activity(
            START_RESPONSE,
            request,
            result_type=ResponseSnapshot,
            start_to_close_timeout=PROVIDER_CALL_TIMEOUT,
            retry_policy=PROVIDER_RETRY,
        )
        self._response = snapshot
        if snapshot.response_id not in self._provider_ids:
            self._provider_ids.append(snapshot.response_id)
            workflow.upsert_search_attributes(
                [LANEWAY_PROVIDER_IDS.value_set(list(self._provider_ids))]
            )
        await self._on_provider_change(snapshot)
        return snapshot

    async def _get_response(self, response_id: str) -> ResponseSnapshot:
        snapshot: ResponseSnapshot = await workflow.execute_activity(
            GET_RESPONSE,
            response_id,
            result_type=ResponseSnapshot,
            start_to_close_timeout=PROVIDER_CALL_TIMEOUT,
            retry_policy=PROVIDER_RETRY,
        )
        return snapshot

    async def _cancel_provider(self) -> None:
        if self._response is None or self._response.status in PROVIDER_TERMINAL:
            return
        self._response = await workflow.execute_activity(
            CANCEL_RESPONSE,
            self._response.response_id,
            result_type=ResponseSnapshot,
            start_to_close_timeout=PROVIDER_CALL_TIMEOUT,
            retry_policy=PROVIDER_RETRY,
        )

    async def _store_result(self, snapshot: ResponseSnapshot) -> ResultSummary:
        summary: ResultSummary = await workflow.execute_activity(
            STORE_RESULT,
            StoreResultRequest(
                job_id=self._job.job_id,
                attempt=self._attempts,
                response_id=snapshot.response_id,
                service_tier=self._job.spec.input.service_tier,
            ),
            result_type=ResultSummary,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=PROVIDER_RETRY,
        )
        return summary

    async def _on_provider_change(self, snapshot: ResponseSnapshot) -> None:
        self._response = snapshot
        if snapshot.status == "queued":
            status = ProductStatus.QUEUED
        elif snapshot.status == "in_progress":
            status = ProductStatus.RUNNING
        else:
            return  # terminal provider states are decided by the lifecycle
        if status != self._status:
            await self._set_status(status, reason=None, note=f"provider: {snapshot.status}")

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
        await self._record(kind=kind, actor=actor, note=note or (reason or ""), to_status=status)
        self._status = status
        self._reason = reason
        self._updated_at = workflow.now()
        workflow.upsert_search_attributes([LANEWAY_STATUS.value_set(status.value)])
        self._set_details()
        workflow.logger.info(
            "job status", extra={"job_id": self._job.job_id, "status": status.value}
        )

    async def _record(
        self, *, kind: str, actor: str, note: str, to_status: ProductStatus | None = None
    ) -> None:
        await self._audit.record(kind=kind, actor=actor, note=note, to_status=to_status)

    async def _escalate(self, actor: str, note: str) -> None:
        self._escalated = True
        self._set_details()
        await self._record(kind="escalated", actor=actor, note=note)

    # ---- waiting --------------------------------------------------------------------------

    def _decided_or_canceled(self) -> bool:
        return self._decision is not None or self._cancel_request is not None

    def _raise_if_cancel_requested(self) -> None:
        request = self._cancel_request
        if request is not None:
            reason = f"cancelled by {request.actor.id}: {request.note}".rstrip(": ")
            raise JobEnds(ProductStatus.CANCELED, reason, request.actor.id)

    def _review_wanted(self, final: ResponseSnapshot) -> bool:
        return self._job.spec.review_policy.wants_review(final.status)

    @staticmethod
    def _rejection_reason(error: ActivityError) -> str:
        """The provider refused a call for good (e.g. 401): its own words, for the operator."""
        cause = error.cause
        if isinstance(cause, ApplicationError) and cause.type == PROVIDER_REJECTED:
            return f"the provider refused the request: {cause.message}"
        raise error

    @staticmethod
    def _failure_reason(final: ResponseSnapshot) -> str:
        reason = response_reason(
            final.status,
            error_code=final.error_code,
            error_message=final.error_message,
            incomplete_reason=final.incomplete_reason,
        )
        return reason or f"the response ended {final.status}"

    def _completion_reason(self) -> str:
        if self._side_effect_ran:
            return "approved and delivered" if self._decision else "delivered"
        return "approved" if self._decision else "completed"

    # ---- signals, updates, queries ----------------------------------------------------------

    @workflow.signal
    def provider_event(self, provider_id: str) -> None:
        """A webhook said something happened to one of this job's provider objects."""
        if provider_id in self._provider_ids:
            self._provider_event_pending = True

    @workflow.update
    async def approve(self, request: ControlRequest) -> JobView:
        self._decision = ("approved", request)
        await workflow.wait_condition(lambda: self._status != ProductStatus.NEEDS_REVIEW)
        return self.status()

    @approve.validator
    def _validate_approve(self, request: ControlRequest) -> None:
        self._check(request, "approve")

    @workflow.update
    async def reject(self, request: ControlRequest) -> JobView:
        self._decision = ("rejected", request)
        await workflow.wait_condition(lambda: self._status in TERMINAL)
        return self.status()

    @reject.validator
    def _validate_reject(self, request: ControlRequest) -> None:
        self._check(request, "reject")

    @workflow.update
    async def cancel(self, request: ControlRequest) -> JobView:
        self._cancel_request = request
        await workflow.wait_condition(lambda: self._status in TERMINAL)
        return self.status()

    @cancel.validator
    def _validate_cancel(self, request: ControlRequest) -> None:
        self._check(request, "cancel")
        if self._side_effect_started:
            raise ApplicationError(
                "the side effect has already started; it cannot be cancelled",
                type=ACTION_NOT_ALLOWED_NOW,
            )

    @workflow.update
    async def retry(self, request: ControlRequest) -> JobView:
        self._retry_request = request
        await workflow.wait_condition(lambda: self._status != ProductStatus.FAILED)
        return self.status()

    @retry.validator
    def _validate_retry(self, request: ControlRequest) -> None:
        self._check(request, "retry")

    @workflow.update
    async def archive(self, request: ControlRequest) -> JobView:
        """Close a failed job nobody will retry, before its hold runs out."""
        self._archive_request = request
        await workflow.wait_condition(lambda: self._ended)
        return self.status()

    @archive.validator
    def _validate_archive(self, request: ControlRequest) -> None:
        self._check(request, "archive")

    @workflow.update
    async def escalate(self, request: ControlRequest) -> JobView:
        await self._escalate(request.actor.id, request.note or "escalated by an operator")
        return self.status()

    @escalate.validator
    def _validate_escalate(self, request: ControlRequest) -> None:
        self._check(request, "escalate")

    @workflow.query
    def status(self) -> JobView:
        spec = self._job.spec
        return JobView(
            job_id=self._job.job_id,
            status=self._status,
            lane=Lane.BACKGROUND.value,
            job_type=spec.job_type,
            workspace=spec.workspace,
            requested_by=spec.requested_by,
            attempts=self._attempts,
            provider_ids=list(self._provider_ids),
            created_at=self._created_at,
            updated_at=self._updated_at,
            reason=self._reason,
            escalated=self._escalated,
            cost_usd=self._result.cost_usd if self._result else None,
            allowed_actions=self._allowed_actions(),
        )

    def _allowed_actions(self) -> list[str]:
        return allowed_actions(
            self._status,
            side_effect_ran=self._side_effect_started,
            escalated=self._escalated,
            archived=self._archive_request is not None,
        )

    def _check(self, request: ControlRequest, action: str) -> None:
        spec = self._job.spec
        check_control(
            request,
            action,
            workspace=spec.workspace,
            requested_by=spec.requested_by,
            status=self._status,
            allowed=self._allowed_actions(),
            already_decided=None
            if self._decision is None
            else f"the job was already {self._decision[0]}",
        )

    # ---- presentation -----------------------------------------------------------------------

    def _set_details(self) -> None:
        parts = [f"**{self._status.value}**", f"attempt {self._attempts}"]
        if self._provider_ids:
            parts.append(self._provider_ids[-1])
        if self._result is not None:
            parts.append(f"${self._result.cost_usd}")
        if self._escalated:
            parts.append("escalated")
        if self._reason:
            parts.append(self._reason)
        actions = ", ".join(self._allowed_actions()) or "none"
        workflow.set_current_details(" · ".join(parts) + f"\n\nallowed actions: {actions}")

    def _outcome(self) -> JobOutcome:
        return JobOutcome(
            job_id=self._job.job_id,
            status=self._status,
            reason=self._reason,
            attempts=self._attempts,
            result=self._result,
            side_effect_ran=self._side_effect_ran,
        )
