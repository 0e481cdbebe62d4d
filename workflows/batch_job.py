"""BatchJobWorkflow: a JSONL backlog through OpenAI's Batch API, every record accounted for.

The job is recorded, its input validated and planned into shards (activities that read and
write the artifact store and the ledger: only references and counts reach this history). A
plan dearer than the workspace's threshold waits for approval. Each round runs its shards as
child workflows (BatchShardWorkflow), at most `max_shards_in_flight` at a time; when a round
ends, the records that failed for a retryable reason or got no result form the next round,
until none are left or the round budget is spent. Then the results are joined onto the
input, and an optional side effect runs behind the approval gate.

History stays small whatever the duration: waiting happens in the children's poll activity
retries, and this workflow only sees a handful of events per shard and per round.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from laneway.background import ControlRequest
    from laneway.batch import (
        BUILD_BATCH_RESULTS,
        COUNT_RECORDS,
        PLAN_BATCH,
        PLAN_RETRY_ROUND,
        RECORD_BATCH_JOB,
        RUN_BATCH_SIDE_EFFECT,
        VALIDATE_BATCH_INPUT,
        BatchJobInput,
        BatchOutcome,
        BatchProgress,
        BatchReport,
        BatchResume,
        BatchSideEffectRequest,
        BuildResultsRequest,
        Estimate,
        PlanRequest,
        RecordCounts,
        RetryRoundRequest,
        RoundPlan,
        ShardJob,
        ShardOutcome,
        ShardRef,
        ValidationReport,
    )
    from laneway.jobs import ReviewExpiryAction, ReviewPolicy
    from laneway.permissions import ACTION_NOT_ALLOWED_NOW
    from laneway.status import TERMINAL_PRODUCT_STATUSES, Lane, ProductStatus, allowed_actions
    from workflows.batch_shard import BatchShardWorkflow
    from workflows.job_common import (
        LEDGER_CALL_TIMEOUT,
        LEDGER_RETRY,
        AuditTrail,
        JobEnds,
        check_control,
        signal_workflow,
        wait_for,
    )
    from workflows.search_attributes import (
        LANEWAY_JOB_TYPE,
        LANEWAY_LANE,
        LANEWAY_PROGRESS,
        LANEWAY_PROVIDER_IDS,
        LANEWAY_RECORDS_FAILED,
        LANEWAY_RECORDS_SUCCEEDED,
        LANEWAY_RECORDS_TOTAL,
        LANEWAY_STATUS,
        LANEWAY_WORKSPACE,
    )

FILE_WORK_TIMEOUT = timedelta(hours=2)  # validation, planning and results of large inputs
FILE_WORK_HEARTBEAT = timedelta(seconds=30)
FAILED_HOLD = timedelta(days=7)


@workflow.defn
class BatchJobWorkflow:
    @workflow.init
    def __init__(self, job: BatchJobInput) -> None:
        self._job = job
        self._status = ProductStatus.QUEUED
        self._reason: str | None = None
        self._audit = AuditTrail(job.job_id)
        self._created_at = workflow.now()
        self._updated_at = self._created_at
        self._round = 0
        self._endpoint: str = job.spec.endpoint or ""
        self._rounds_allowed = job.spec.max_rounds
        self._counts = RecordCounts()
        self._quarantined = 0
        self._estimate: Estimate | None = None
        self._report: BatchReport | None = None
        self._provider_ids: list[str] = []
        self._shard_of_batch: dict[str, str] = {}
        self._running: dict[str, asyncio.Task[ShardOutcome]] = {}
        self._last_round_statuses: list[str] = []
        self._unexpected_lines = 0
        self._escalated = False
        self._gate: str | None = None  # "plan" or "results" while a reviewer is awaited
        self._decision: tuple[str, ControlRequest] | None = None
        self._cancel_request: ControlRequest | None = None
        self._retry_request: ControlRequest | None = None
        self._archive_request: ControlRequest | None = None
        self._side_effect_started = False
        self._side_effect_ran = False
        self._ended = False

    # ---- lifecycle ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, job: BatchJobInput) -> BatchOutcome:
        try:
            await self._lifecycle()
        except JobEnds as end:
            await self._end(end)
        except asyncio.CancelledError:
            # Cancelled through Temporal: the provider batches are cancelled and partial
            # results kept, exactly as for the cancel Update.
            await self._end(
                JobEnds(ProductStatus.CANCELED, "cancelled through Temporal", "temporal")
            )
            raise
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._outcome()

    async def _lifecycle(self) -> None:
        resume = self._job.resume
        if resume is None:
            await self._record_job()
            validation = await self._validate()
            plan = await self._plan(validation)
            await self._plan_gate(plan)
        else:
            validation, plan = resume.validation, resume.next_plan
            self._restore(resume)
        while True:
            await self._run_rounds(plan, validation)
            self._report = await self._build_results(validation)
            unresolved = self._counts.retryable
            if unresolved == 0:
                break
            await self._hold_failed(self._unresolved_reason())
            plan = await self._plan_retry(validation)
        await self._results_gate()
        await self._run_side_effect()
        raise JobEnds(ProductStatus.COMPLETED, self._completion_reason())

    async def _validate(self) -> ValidationReport:
        validation: ValidationReport = await workflow.execute_activity(
            VALIDATE_BATCH_INPUT,
            self._job.spec,
            result_type=ValidationReport,
            start_to_close_timeout=FILE_WORK_TIMEOUT,
            heartbeat_timeout=FILE_WORK_HEARTBEAT,
            retry_policy=LEDGER_RETRY,
        )
        if validation.requests is None:
            raise JobEnds(ProductStatus.FAILED, validation.summary())
        self._endpoint = validation.endpoint or ""
        if validation.rejected:
            self._quarantined = validation.rejected
            await self._audit.record(
                kind="note", actor="laneway", note="quarantined: " + validation.summary()
            )
        return validation

    async def _plan(self, validation: ValidationReport) -> RoundPlan:
        try:
            plan: RoundPlan = await workflow.execute_activity(
                PLAN_BATCH,
                PlanRequest(job_id=self._job.job_id, spec=self._job.spec, validation=validation),
                result_type=RoundPlan,
                start_to_close_timeout=FILE_WORK_TIMEOUT,
                heartbeat_timeout=FILE_WORK_HEARTBEAT,
                retry_policy=LEDGER_RETRY,
            )
        except ActivityError as error:
            raise JobEnds(ProductStatus.FAILED, _cause(error)) from None
        self._estimate = plan.estimate
        self._counts = RecordCounts(total=plan.requests, pending=plan.requests)
        self._set_progress()
        return plan

    async def _plan_retry(self, validation: ValidationReport) -> RoundPlan:
        plan: RoundPlan = await workflow.execute_activity(
            PLAN_RETRY_ROUND,
            RetryRoundRequest(
                job_id=self._job.job_id,
                spec=self._job.spec,
                validation=validation,
                round=self._round + 1,
            ),
            result_type=RoundPlan,
            start_to_close_timeout=FILE_WORK_TIMEOUT,
            heartbeat_timeout=FILE_WORK_HEARTBEAT,
            retry_policy=LEDGER_RETRY,
        )
        return plan

    async def _run_rounds(self, plan: RoundPlan, validation: ValidationReport) -> None:
        """Round after round until nothing is retryable or the budget is spent."""
        while True:
            await self._run_round(plan)
            self._raise_if_cancel_requested()
            if self._counts.retryable == 0 or self._round >= self._rounds_allowed:
                return
            plan = await self._plan_retry(validation)
            await self._continue_as_new_if_long(plan, validation)

    async def _continue_as_new_if_long(self, plan: RoundPlan, validation: ValidationReport) -> None:
        """Between rounds, a long history hands the job to a fresh run of this workflow."""
        info = workflow.info()
        length = info.get_current_history_length()
        if (
            length < self._job.continue_as_new_after_events
            and not info.is_continue_as_new_suggested()
        ):
            return
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._raise_if_cancel_requested()
        resume = BatchResume(
            validation=validation,
            next_plan=plan,
            rounds_allowed=self._rounds_allowed,
            counts=self._counts,
            estimate=self._estimate,
            quarantined=self._quarantined,
            provider_ids=self._provider_ids,
            audit_events=self._audit.events,
            created_at=self._created_at,
            escalated=self._escalated,
        )
        workflow.logger.info(
            "continuing as new", extra={"job_id": self._job.job_id, "history_events": length}
        )
        workflow.continue_as_new(self._job.model_copy(update={"resume": resume}))

    def _restore(self, resume: BatchResume) -> None:
        self._rounds_allowed = resume.rounds_allowed
        self._counts = resume.counts
        self._estimate = resume.estimate
        self._quarantined = resume.quarantined
        self._provider_ids = list(resume.provider_ids)
        self._audit = AuditTrail(self._job.job_id, resume.audit_events)
        self._created_at = resume.created_at
        self._escalated = resume.escalated
        self._endpoint = resume.validation.endpoint or self._endpoint
        self._status = ProductStatus.RUNNING
        self._round = resume.next_plan.round - 1

    async def _run_round(self, plan: RoundPlan) -> None:
        self._round = plan.round
        self._last_round_statuses = []
        await self._set_status(
            ProductStatus.RUNNING,
            reason=None,
            note=f"round {plan.round}: {plan.requests} records in {len(plan.shards)} shards",
        )
        waiting = list(plan.shards)
        while waiting or self._running:
            if self._cancel_request is not None:
                waiting.clear()  # never submitted: their records stay pending in the ledger
                await self._stop_shards(self._cancel_reason())
                break
            while waiting and len(self._running) < self._job.spec.max_shards_in_flight:
                self._start_shard(waiting.pop(0))
            self._set_details()
            cancel = asyncio.create_task(
                workflow.wait_condition(lambda: self._cancel_request is not None)
            )
            await workflow.wait(
                [*self._running.values(), cancel], return_when=asyncio.FIRST_COMPLETED
            )
            cancel.cancel()
            await self._collect_finished_shards()
        self._counts = await self._count_records()
        self._set_progress()

    def _start_shard(self, shard: ShardRef) -> None:
        child_id = f"{workflow.info().workflow_id}/round-{self._round}/shard-{shard.index}"
        self._running[child_id] = asyncio.create_task(
            workflow.execute_child_workflow(
                BatchShardWorkflow.run,
                ShardJob(
                    job_id=self._job.job_id,
                    shard=shard,
                    endpoint=self._endpoint,
                    polling=self._job.polling,
                    token_limit_backoff=self._job.token_limit_backoff,
                ),
                id=child_id,
                # A terminated job still has its shards cancel their provider batches.
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                static_summary=(
                    f"shard {shard.index} of round {self._round} of {self._job.job_id}: "
                    f"{shard.requests} records"
                ),
            )
        )

    async def _collect_finished_shards(self) -> None:
        for child_id, task in list(self._running.items()):
            if not task.done():
                continue
            del self._running[child_id]
            try:
                outcome = task.result()
            except ChildWorkflowError as error:
                await self._stop_shards(f"shard {child_id} failed")
                raise JobEnds(
                    ProductStatus.FAILED, f"shard {child_id} failed: {_cause(error)}"
                ) from None
            self._last_round_statuses.append(outcome.final_status)
            if outcome.unexpected:
                await self._note_unexpected_lines(child_id, outcome.unexpected)
            self._counts = await self._count_records()
            self._set_progress()

    async def _note_unexpected_lines(self, child_id: str, count: int) -> None:
        """Result lines that named no record of their shard: kept in its files, audited."""
        self._unexpected_lines += count
        note = f"{child_id}: {count} result lines named no record of the shard (kept in its files)"
        workflow.logger.warning(note, extra={"job_id": self._job.job_id})
        await self._audit.record(kind="note", actor="laneway", note=note)

    async def _stop_shards(self, reason: str) -> None:
        """Ask every running shard to cancel its batch; wait for their partial results."""
        for child_id, task in self._running.items():
            if not task.done():
                await signal_workflow(child_id, BatchShardWorkflow.stop, reason)
        if self._running:
            await workflow.wait(list(self._running.values()))
        for task in self._running.values():
            if task.exception() is None:
                self._last_round_statuses.append(task.result().final_status)
        self._running.clear()

    async def _hold_failed(self, reason: str) -> None:
        """Records still fail after the budget: the job waits for a retry (one more round)."""
        status = ProductStatus.EXPIRED if self._expired_only() else ProductStatus.FAILED
        await self._set_status(status, reason=reason)
        self._retry_request = None
        await wait_for(
            lambda: self._retry_request is not None or self._archive_request is not None,
            FAILED_HOLD,
        )
        archive = self._archive_request
        if archive is not None:
            await self._audit.record(kind="archived", actor=archive.actor.id, note=archive.note)
            raise JobEnds(status, reason, archive.actor.id)
        retry = self._retry_request
        if retry is None:
            raise JobEnds(status, reason)
        self._rounds_allowed = self._round + 1
        await self._set_status(
            ProductStatus.QUEUED,
            reason=None,
            actor=retry.actor.id,
            note=retry.note or f"retry: round {self._round + 1}",
            kind="retried",
        )

    # ---- approval gates --------------------------------------------------------------------------

    async def _plan_gate(self, plan: RoundPlan) -> None:
        threshold = self._job.plan_approval_above_usd
        estimate = plan.estimate.cost_batch_usd
        if threshold is None:
            return
        if estimate is not None and estimate <= threshold:
            return
        cost = (
            f"${estimate}" if estimate is not None else "an unknown cost (no price for the model)"
        )
        await self._review(
            "plan",
            f"the plan ({plan.requests} records in {len(plan.shards)} shards) is estimated at "
            f"{cost} at batch price, above the workspace's ${threshold}: approve to submit",
        )

    async def _results_gate(self) -> None:
        if self._job.spec.review_policy is ReviewPolicy.REQUIRED:
            await self._review("results", "results ready: waiting for a reviewer")

    async def _review(self, gate: str, reason: str) -> None:
        self._gate, self._decision = gate, None
        await self._set_status(ProductStatus.NEEDS_REVIEW, reason=reason)
        spec = self._job.spec
        decided = await wait_for(self._decided_or_canceled, spec.review_deadline)
        if not decided and spec.review_expiry_action == ReviewExpiryAction.ESCALATE:
            await self._escalate("laneway", "the review window passed without a decision")
            decided = await wait_for(self._decided_or_canceled, spec.review_deadline)
        self._raise_if_cancel_requested()
        if self._decision is None:
            raise JobEnds(ProductStatus.EXPIRED, f"nobody reviewed the {gate} before the deadline")
        verdict, request = self._decision
        if verdict == "rejected":
            raise JobEnds(
                ProductStatus.CANCELED,
                f"{gate} rejected by {request.actor.id}: {request.note}".rstrip(": "),
                request.actor.id,
            )
        await self._audit.record(
            kind="approved", actor=request.actor.id, note=f"{gate}: {request.note}"
        )
        self._gate = None
        if gate == "plan":
            await self._set_status(ProductStatus.QUEUED, reason=None, note="plan approved")

    async def _run_side_effect(self) -> None:
        if self._job.spec.side_effect is None or self._report is None:
            return
        self._side_effect_started = True
        try:
            await workflow.execute_activity(
                RUN_BATCH_SIDE_EFFECT,
                BatchSideEffectRequest(
                    job_id=self._job.job_id, spec=self._job.spec, report=self._report
                ),
                start_to_close_timeout=timedelta(minutes=10),
                retry_policy=RetryPolicy(
                    maximum_interval=timedelta(minutes=1), maximum_attempts=20
                ),
            )
        except ActivityError as error:
            raise JobEnds(
                ProductStatus.FAILED, f"the approved side effect failed: {_cause(error)}"
            ) from None
        self._side_effect_ran = True

    async def _end(self, end: JobEnds) -> None:
        if self._running:
            await self._stop_shards(end.reason)
        if end.status is ProductStatus.CANCELED and self._round > 0:
            self._counts = await self._count_records()
            self._set_progress()
            reason = f"{end.reason} ({self._counts_text()})"
        else:
            reason = end.reason
        await self._set_status(end.status, reason=reason, actor=end.actor)
        self._ended = True

    # ---- activities ----------------------------------------------------------------------------

    async def _record_job(self) -> None:
        spec = self._job.spec
        workflow.upsert_search_attributes(
            [
                LANEWAY_STATUS.value_set(self._status.value),
                LANEWAY_LANE.value_set(Lane.BATCH.value),
                LANEWAY_JOB_TYPE.value_set(spec.job_type),
                LANEWAY_WORKSPACE.value_set(spec.workspace),
            ]
        )
        await workflow.execute_activity(
            RECORD_BATCH_JOB,
            self._job,
            start_to_close_timeout=LEDGER_CALL_TIMEOUT,
            retry_policy=LEDGER_RETRY,
        )
        self._set_details()

    async def _count_records(self) -> RecordCounts:
        counts: RecordCounts = await workflow.execute_activity(
            COUNT_RECORDS,
            self._job.job_id,
            result_type=RecordCounts,
            start_to_close_timeout=LEDGER_CALL_TIMEOUT,
            retry_policy=LEDGER_RETRY,
        )
        return counts

    async def _build_results(self, validation: ValidationReport) -> BatchReport:
        report: BatchReport = await workflow.execute_activity(
            BUILD_BATCH_RESULTS,
            BuildResultsRequest(
                job_id=self._job.job_id,
                spec=self._job.spec,
                validation=validation,
                rounds=self._round,
                estimate=self._estimate,
            ),
            result_type=BatchReport,
            start_to_close_timeout=FILE_WORK_TIMEOUT,
            heartbeat_timeout=FILE_WORK_HEARTBEAT,
            retry_policy=LEDGER_RETRY,
        )
        self._counts = report.records
        return report

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
            kind=kind, actor=actor, note=note or (reason or ""), to_status=status
        )
        self._status, self._reason = status, reason
        self._updated_at = workflow.now()
        workflow.upsert_search_attributes([LANEWAY_STATUS.value_set(status.value)])
        self._set_details()
        workflow.logger.info(
            "job status", extra={"job_id": self._job.job_id, "status": status.value}
        )

    async def _escalate(self, actor: str, note: str) -> None:
        self._escalated = True
        self._set_details()
        await self._audit.record(kind="escalated", actor=actor, note=note)

    # ---- small decisions -----------------------------------------------------------------------

    def _expired_only(self) -> bool:
        """The records left unresolved are there because batches ran out of their window."""
        return "expired" in self._last_round_statuses and all(
            status in ("expired", "completed") for status in self._last_round_statuses
        )

    def _unresolved_reason(self) -> str:
        return (
            f"{self._counts.retryable} records still failing after {self._round} rounds "
            f"({self._counts_text()}); retry runs one more round"
        )

    def _counts_text(self) -> str:
        c = self._counts
        return f"{c.succeeded} of {c.total} succeeded, {c.failed} failed, {c.pending} never sent"

    def _completion_reason(self) -> str:
        c = self._counts
        text = f"{c.succeeded} of {c.total} records succeeded in {self._round} rounds"
        if c.permanent_failures:
            text += f"; {c.permanent_failures} failed for good (see the errors file)"
        if self._quarantined:
            text += f"; {self._quarantined} input lines quarantined"
        if self._unexpected_lines:
            text += f"; {self._unexpected_lines} result lines named no record (see the audit)"
        if self._side_effect_ran:
            text += "; results delivered"
        return text

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

    # ---- presentation --------------------------------------------------------------------------

    def _progress_text(self) -> str:
        c = self._counts
        return (
            f"round {self._round} · {c.total} total · {c.succeeded} succeeded · "
            f"{c.failed} failed · {c.pending} pending"
        )

    def _set_progress(self) -> None:
        c = self._counts
        workflow.upsert_search_attributes(
            [
                LANEWAY_RECORDS_TOTAL.value_set(c.total),
                LANEWAY_RECORDS_SUCCEEDED.value_set(c.succeeded),
                LANEWAY_RECORDS_FAILED.value_set(c.failed),
                LANEWAY_PROGRESS.value_set(self._progress_text()),
            ]
        )
        self._set_details()

    def _set_details(self) -> None:
        parts = [f"**{self._status.value}**", self._progress_text()]
        if self._running:
            parts.append(f"{len(self._running)} shards in flight")
        if self._estimate is not None and self._estimate.cost_batch_usd is not None:
            parts.append(f"estimate ${self._estimate.cost_batch_usd}")
        if self._report is not None and self._report.cost_batch_usd is not None:
            parts.append(f"cost ${self._report.cost_batch_usd}")
        if self._escalated:
            parts.append("escalated")
        if self._reason:
            parts.append(self._reason)
        actions = ", ".join(self._allowed_actions()) or "none"
        workflow.set_current_details(" · ".join(parts) + f"\n\nallowed actions: {actions}")

    def _outcome(self) -> BatchOutcome:
        return BatchOutcome(
            job_id=self._job.job_id,
            status=self._status,
            reason=self._reason,
            report=self._report,
            side_effect_ran=self._side_effect_ran,
        )

    # ---- signals, updates, queries ---------------------------------------------------------------

    @workflow.signal
    async def provider_event(self, provider_id: str) -> None:
        """A webhook said one of this job's batches changed: tell the shard that owns it."""
        child_id = self._shard_of_batch.get(provider_id)
        if child_id is not None and child_id in self._running:
            await signal_workflow(child_id, BatchShardWorkflow.provider_event, provider_id)

    @workflow.signal
    def shard_batch_created(self, child_id: str, batch_id: str) -> None:
        if batch_id not in self._shard_of_batch:
            self._shard_of_batch[batch_id] = child_id
            self._provider_ids.append(batch_id)
            workflow.upsert_search_attributes(
                [LANEWAY_PROVIDER_IDS.value_set(list(self._provider_ids))]
            )

    @workflow.update
    async def approve(self, request: ControlRequest) -> BatchProgress:
        self._decision = ("approved", request)
        await workflow.wait_condition(lambda: self._status != ProductStatus.NEEDS_REVIEW)
        return self.status()

    @approve.validator
    def _validate_approve(self, request: ControlRequest) -> None:
        self._check(request, "approve")

    @workflow.update
    async def reject(self, request: ControlRequest) -> BatchProgress:
        self._decision = ("rejected", request)
        await workflow.wait_condition(lambda: self._status in TERMINAL_PRODUCT_STATUSES)
        return self.status()

    @reject.validator
    def _validate_reject(self, request: ControlRequest) -> None:
        self._check(request, "reject")

    @workflow.update
    async def cancel(self, request: ControlRequest) -> BatchProgress:
        self._cancel_request = request
        await workflow.wait_condition(lambda: self._ended)
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
    async def retry(self, request: ControlRequest) -> BatchProgress:
        self._retry_request = request
        await workflow.wait_condition(
            lambda: self._status not in (ProductStatus.FAILED, ProductStatus.EXPIRED)
        )
        return self.status()

    @retry.validator
    def _validate_retry(self, request: ControlRequest) -> None:
        self._check(request, "retry")

    @workflow.update
    async def archive(self, request: ControlRequest) -> BatchProgress:
        self._archive_request = request
        await workflow.wait_condition(lambda: self._ended)
        return self.status()

    @archive.validator
    def _validate_archive(self, request: ControlRequest) -> None:
        self._check(request, "archive")

    @workflow.update
    async def escalate(self, request: ControlRequest) -> BatchProgress:
        await self._escalate(request.actor.id, request.note or "escalated by an operator")
        return self.status()

    @escalate.validator
    def _validate_escalate(self, request: ControlRequest) -> None:
        self._check(request, "escalate")

    @workflow.query
    def status(self) -> BatchProgress:
        spec = self._job.spec
        return BatchProgress(
            job_id=self._job.job_id,
            status=self._status,
            lane=Lane.BATCH.value,
            job_type=spec.job_type,
            workspace=spec.workspace,
            requested_by=spec.requested_by,
            round=self._round,
            records=self._counts,
            quarantined=self._quarantined,
            shards_in_flight=len(self._running),
            provider_ids=list(self._provider_ids),
            created_at=self._created_at,
            updated_at=self._updated_at,
            reason=self._reason,
            estimate=self._estimate,
            cost_usd=self._report.cost_batch_usd if self._report else None,
            allowed_actions=self._allowed_actions(),
            report=self._report,
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
            else f"the {self._gate or 'job'} was already {self._decision[0]}",
        )


def _cause(error: ActivityError | ChildWorkflowError) -> str:
    cause = error.cause
    while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause is not None:
        cause = cause.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause or error)
