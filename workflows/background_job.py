"""BackgroundJobWorkflow: one tracked product job on OpenAI's background Responses mode.

The lane's part of the job lifecycle (workflows/lifecycle.py): start a background response,
follow it (poll, or be woken by a webhook) until the provider ends it, store the result, and
map the provider's status to the product's (`laneway.status`). A failed attempt is held for
a retry; output that needs review waits at the gate; the side effect runs after approval.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from laneway.background import (
        PROVIDER_REJECTED,
        RESPONSE_UNCHANGED,
        BackgroundJobInput,
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
    from laneway.pricing import format_usd
    from laneway.status import (
        TERMINAL_RESPONSE_STATUSES,
        Lane,
        ProductStatus,
        product_status_for_response,
        response_reason,
    )
    from workflows.activity_types import (
        cancel_response,
        get_response,
        record_background_job,
        run_side_effect,
        start_background_response,
        store_response_result,
        wait_for_response_change,
    )
    from workflows.job_common import PROVIDER_CALL_TIMEOUT, PROVIDER_RETRY, JobEnds
    from workflows.lifecycle import JobLifecycle, failure_cause
    from workflows.search_attributes import LANEWAY_PROVIDER_IDS
    from workflows.waiting import out_of_time, poll_or_wake

STORE_RESULT_TIMEOUT = timedelta(minutes=2)
SIDE_EFFECT_TIMEOUT = timedelta(minutes=2)


class _ProviderDeadlinePassed(Exception):
    pass


@workflow.defn
class BackgroundJobWorkflow(JobLifecycle):
    """One background response per attempt, followed until the provider ends it."""

    @workflow.init
    def __init__(self, job: BackgroundJobInput) -> None:
        self._job = job
        self._init_lifecycle(Lane.BACKGROUND, job.job_id, job.spec, job.failed_hold)
        self._attempts = 0
        self._response: ResponseSnapshot | None = None
        self._result: ResultSummary | None = None
        self._provider_event_pending = False
        self._cancel_failed = False

    @workflow.run
    async def run(self, job: BackgroundJobInput) -> JobOutcome:
        return await self._run_lifecycle(JobOutcome)

    # ---- the lane's work -------------------------------------------------------------------

    async def _work(self) -> JobEnds:
        while True:
            try:
                final = await self._provider_attempt()
            except ActivityError as error:
                await self._hold_failed(
                    ProductStatus.FAILED, self._rejection_reason(error), self._retry_note()
                )
                continue
            status = product_status_for_response(
                final.status, review_wanted=self._review_wanted(final)
            )
            if status is ProductStatus.CANCELED:
                raise JobEnds(ProductStatus.CANCELED, "the response was cancelled at the provider")
            if status is not ProductStatus.FAILED:
                break
            await self._hold_failed(
                ProductStatus.FAILED, self._failure_reason(final), self._retry_note()
            )
        if status is ProductStatus.NEEDS_REVIEW:
            await self._review("job", "waiting for a reviewer")
        if self._job.spec.side_effect is not None and self._result is not None:
            request = SideEffectRequest(
                job_id=self._job.job_id, spec=self._job.spec, result=self._result
            )
            await self._run_side_effect(run_side_effect, request, SIDE_EFFECT_TIMEOUT)
        return JobEnds(ProductStatus.COMPLETED, self._completion_reason())

    async def _provider_attempt(self) -> ResponseSnapshot:
        """One provider response from start to a terminal provider status."""
        self._attempts += 1
        attempt_started = workflow.now()
        snapshot = await self._start_response()
        deadline = attempt_started + self._job.spec.provider_deadline
        try:
            snapshot = await self._follow(snapshot, deadline)
        except _ProviderDeadlinePassed:
            reason = "the provider did not finish within " + describe_duration(
                self._job.spec.provider_deadline
            )
            raise JobEnds(ProductStatus.EXPIRED, reason + await self._stop_provider()) from None
        if snapshot.status in ("completed", "incomplete"):
            self._result = await self._store_result(snapshot)
        return snapshot

    async def _follow(self, snapshot: ResponseSnapshot, deadline: datetime) -> ResponseSnapshot:
        while snapshot.status not in TERMINAL_RESPONSE_STATUSES:
            self._raise_if_cancel_requested()
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                raise _ProviderDeadlinePassed
            changed = await self._next_change(snapshot, remaining, deadline)
            if changed.status != snapshot.status:
                await self._on_provider_change(changed)
            snapshot = changed
        return snapshot

    async def _next_change(
        self, snapshot: ResponseSnapshot, remaining: timedelta, deadline: datetime
    ) -> ResponseSnapshot:
        """The poll's answer, or a fresh look when a provider event or a cancel woke the job."""
        try:
            changed = await poll_or_wake(
                wait_for_response_change,
                WaitForChangeRequest(response_id=snapshot.response_id, last_status=snapshot.status),
                polling=self._job.polling,
                deadline=remaining,
                woken=lambda: self._provider_event_pending or self._cancel_request is not None,
            )
        except ActivityError as error:
            # The poll gave up at the deadline, whatever its last attempt met (a 5xx too):
            # the job expires, it does not fail behind an open status.
            if out_of_time(error, RESPONSE_UNCHANGED) or workflow.now() >= deadline:
                raise _ProviderDeadlinePassed from error
            raise
        if changed is not None:
            return changed
        self._raise_if_cancel_requested()
        self._provider_event_pending = False
        return await self._call_provider(get_response, snapshot.response_id)

    async def _before_end(self, end: JobEnds) -> JobEnds:
        # Whatever ended the job, the provider stops working; if it cannot be told, the
        # job still ends and its reason says so.
        problem = await self._stop_provider()
        return JobEnds(end.status, end.reason + problem, end.actor) if problem else end

    async def _stop_provider(self) -> str:
        """Cancel the response still running; what went wrong, as a reason's tail, or ""."""
        if self._cancel_failed:
            return ""  # already said, in the reason that ends the job
        try:
            await self._cancel_provider()
        except ActivityError as error:
            if is_cancelled_exception(error):
                raise
            self._cancel_failed = True
            return f"; could not cancel the provider response: {failure_cause(error)}"
        return ""

    # ---- provider and ledger calls ----------------------------------------------------------

    async def _record_job(self) -> None:
        await self._ledger_call(record_background_job, self._job)

    async def _start_response(self) -> ResponseSnapshot:
        request = StartResponseRequest(
            job_id=self._job.job_id,
            attempt=self._attempts,
            idempotency_key=f"{workflow.info().workflow_id}/attempt-{self._attempts}",
            spec=self._job.spec,
        )
        snapshot = await workflow.execute_activity(
            start_background_response,
            request,
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

    async def _call_provider(
        self, call: Callable[[str], Awaitable[ResponseSnapshot]], response_id: str
    ) -> ResponseSnapshot:
        return await workflow.execute_activity(
            call,
            response_id,
            start_to_close_timeout=PROVIDER_CALL_TIMEOUT,
            retry_policy=PROVIDER_RETRY,
        )

    async def _cancel_provider(self) -> None:
        if self._response is None or self._response.status in TERMINAL_RESPONSE_STATUSES:
            return
        self._response = await self._call_provider(cancel_response, self._response.response_id)

    async def _store_result(self, snapshot: ResponseSnapshot) -> ResultSummary:
        return await workflow.execute_activity(
            store_response_result,
            StoreResultRequest(
                job_id=self._job.job_id,
                attempt=self._attempts,
                response_id=snapshot.response_id,
                service_tier=self._job.spec.input.service_tier,
            ),
            start_to_close_timeout=STORE_RESULT_TIMEOUT,
            retry_policy=PROVIDER_RETRY,
        )

    async def _on_provider_change(self, snapshot: ResponseSnapshot) -> None:
        self._response = snapshot
        if snapshot.status in TERMINAL_RESPONSE_STATUSES:
            return  # a finished response is the lifecycle's to judge
        status = product_status_for_response(snapshot.status, review_wanted=False)
        if status != self._status:
            await self._set_status(status, reason=None, note=f"provider: {snapshot.status}")

    async def _on_provider_event(self, provider_id: str) -> None:
        if provider_id in self._provider_ids:
            self._provider_event_pending = True

    # ---- small decisions --------------------------------------------------------------------

    def _review_wanted(self, final: ResponseSnapshot) -> bool:
        return self._job.spec.review_policy.wants_review(final.status)

    def _retry_note(self) -> str:
        return f"retry, attempt {self._attempts + 1}"

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

    # ---- views ------------------------------------------------------------------------------

    def _view(self) -> JobView:
        return JobView(
            **self._view_fields(),
            attempts=self._attempts,
            escalated=self._escalated,
            cost_usd=self._result.cost_usd if self._result else None,
        )

    def _outcome(self) -> JobOutcome:
        return JobOutcome(**self._outcome_fields(), attempts=self._attempts, result=self._result)

    def _detail_parts(self) -> list[str]:
        parts = [f"attempt {self._attempts}"]
        if self._provider_ids:
            parts.append(self._provider_ids[-1])
        if self._result is not None:
            parts.append(format_usd(self._result.cost_usd))
        return parts
