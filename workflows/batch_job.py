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
from temporalio.exceptions import ActivityError, ChildWorkflowError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from laneway.batch import (
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
    from laneway.jobs import ReviewPolicy
    from laneway.pricing import format_usd
    from laneway.status import Lane, ProductStatus, batch_job_ending
    from workflows.activity_types import (
        build_batch_results,
        count_batch_records,
        plan_batch,
        plan_retry_round,
        record_batch_job,
        run_batch_side_effect,
        validate_batch_input,
    )
    from workflows.batch_shard import BatchShardWorkflow
    from workflows.job_common import LEDGER_RETRY, AuditTrail, JobEnds
    from workflows.lifecycle import JobLifecycle, failure_cause
    from workflows.search_attributes import (
        LANEWAY_PROGRESS,
        LANEWAY_PROVIDER_IDS,
        LANEWAY_RECORDS_FAILED,
        LANEWAY_RECORDS_SUCCEEDED,
        LANEWAY_RECORDS_TOTAL,
    )
    from workflows.waiting import signal_workflow

FILE_WORK_TIMEOUT = timedelta(hours=2)  # validation, planning and results of large inputs
FILE_WORK_HEARTBEAT = timedelta(seconds=30)
FAILED_HOLD = timedelta(days=7)
SIDE_EFFECT_TIMEOUT = timedelta(minutes=10)


@workflow.defn
class BatchJobWorkflow(JobLifecycle):
    """A validated, planned backlog, run in rounds of shards until every record is settled."""

    @workflow.init
    def __init__(self, job: BatchJobInput) -> None:
        self._init_lifecycle(Lane.BATCH, job.job_id, job.spec, FAILED_HOLD)
        self._job = job
        self._round = 0
        self._endpoint: str = job.spec.endpoint or ""
        self._rounds_allowed = job.spec.max_rounds
        self._counts = RecordCounts()
        self._quarantined = 0
        self._validation: ValidationReport | None = None
        self._estimate: Estimate | None = None
        self._report: BatchReport | None = None
        self._shard_of_batch: dict[str, str] = {}
        self._running: dict[str, asyncio.Task[ShardOutcome]] = {}
        self._stuck: dict[str, str] = {}  # shard workflow id -> how long its batch is stuck
        self._last_round_statuses: list[str] = []
        self._batch_failures: list[str] = []
        self._unexpected_lines = 0
        if job.resume is not None:
            self._restore(job.resume)

    @workflow.run
    async def run(self, job: BatchJobInput) -> BatchOutcome:
        return await self._run_lifecycle(BatchOutcome)

    # ---- the lane's work -----------------------------------------------------------------------

    async def _work(self) -> JobEnds:
        resume = self._job.resume
        if resume is None:
            validation = await self._validate()
            plan = await self._plan(validation)
            await self._plan_gate(plan)
        else:
            validation, plan = resume.validation, resume.next_plan
        while True:
            await self._run_rounds(plan, validation)
            self._report = await self._build_results()
            ending = batch_job_ending(
                succeeded=self._counts.succeeded,
                unresolved=self._counts.retryable,
                expired_only=self._expired_only(),
            )
            if ending is ProductStatus.COMPLETED:
                break
            self._retry_possible = self._counts.retryable > 0
            await self._hold_failed(
                ending, self._unresolved_reason(), f"retry: round {self._round + 1}"
            )
            self._rounds_allowed = self._round + 1
            plan = await self._plan_retry(validation)
        if self._job.spec.review_policy is ReviewPolicy.REQUIRED:
            await self._review("results", "results ready: waiting for a reviewer")
        if self._job.spec.side_effect is not None:
            request = BatchSideEffectRequest(
                job_id=self._job.job_id, spec=self._job.spec, report=self._report
            )
            await self._run_side_effect(run_batch_side_effect, request, SIDE_EFFECT_TIMEOUT)
        return JobEnds(ProductStatus.COMPLETED, self._completion_reason())

    async def _validate(self) -> ValidationReport:
        validation = await workflow.execute_activity(
            validate_batch_input,
            self._job.spec,
            start_to_close_timeout=FILE_WORK_TIMEOUT,
            heartbeat_timeout=FILE_WORK_HEARTBEAT,
            retry_policy=LEDGER_RETRY,
        )
        if validation.requests is None:
            self._retry_possible = False  # the same input would fail the same way
            raise JobEnds(ProductStatus.FAILED, validation.summary())
        self._validation = validation
        self._endpoint = validation.endpoint or ""
        if validation.rejected:
            self._quarantined = validation.rejected
            await self._audit.record(
                kind="note", actor="laneway", note="quarantined: " + validation.summary()
            )
        return validation

    async def _plan(self, validation: ValidationReport) -> RoundPlan:
        try:
            plan = await workflow.execute_activity(
                plan_batch,
                PlanRequest(job_id=self._job.job_id, spec=self._job.spec, validation=validation),
                start_to_close_timeout=FILE_WORK_TIMEOUT,
                heartbeat_timeout=FILE_WORK_HEARTBEAT,
                retry_policy=LEDGER_RETRY,
            )
        except ActivityError as error:
            self._retry_possible = False
            raise JobEnds(ProductStatus.FAILED, failure_cause(error)) from None
        self._estimate = plan.estimate
        self._counts = RecordCounts(total=plan.requests, pending=plan.requests)
        self._set_progress()
        return plan

    async def _plan_retry(self, validation: ValidationReport) -> RoundPlan:
        return await workflow.execute_activity(
            plan_retry_round,
            RetryRoundRequest(
                job_id=self._job.job_id,
                spec=self._job.spec,
                validation=validation,
                round=self._round + 1,
            ),
            start_to_close_timeout=FILE_WORK_TIMEOUT,
            heartbeat_timeout=FILE_WORK_HEARTBEAT,
            retry_policy=LEDGER_RETRY,
        )

    async def _plan_gate(self, plan: RoundPlan) -> None:
        threshold = self._job.plan_approval_above_usd
        estimate = plan.estimate.cost_batch_usd
        if threshold is None or (estimate is not None and estimate <= threshold):
            return
        cost = (
            format_usd(estimate)
            if estimate is not None
            else "an unknown cost (no price for the model)"
        )
        await self._review(
            "plan",
            f"the plan ({plan.requests} records in {len(plan.shards)} shards) is estimated at "
            f"{cost} at batch price, above the workspace's {format_usd(threshold)}: "
            "approve to submit",
        )
        await self._set_status(ProductStatus.QUEUED, reason=None, note="plan approved")

    # ---- rounds and shards ---------------------------------------------------------------------

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
            unexpected_lines=self._unexpected_lines,
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
        self._unexpected_lines = resume.unexpected_lines
        self._validation = resume.validation
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
                raise JobEnds(
                    ProductStatus.FAILED, f"shard {child_id} failed: {failure_cause(error)}"
                ) from None
            self._note_shard_outcome(outcome)
            if outcome.unexpected:
                await self._note_unexpected_lines(child_id, outcome.unexpected)
            self._counts = await self._count_records()
            self._set_progress()
            if outcome.canceled_elsewhere:
                batches = ", ".join(outcome.batch_ids)
                raise JobEnds(
                    ProductStatus.CANCELED,
                    f"batch {batches} was cancelled at the provider, not by Laneway",
                    "provider",
                )

    def _note_shard_outcome(self, outcome: ShardOutcome) -> None:
        self._last_round_statuses.append(outcome.final_status)
        if outcome.batch_failure is not None:
            self._batch_failures.append(outcome.batch_failure)

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
                self._note_shard_outcome(task.result())
        self._running.clear()

    async def _before_end(self, end: JobEnds) -> JobEnds:
        """Stop the shards, and keep what they did: results, errors and cost of every record
        that finished, whatever ended the job."""
        if self._running:
            await self._stop_shards(end.reason)
        if self._round == 0:
            return end
        self._counts = await self._count_records()
        self._set_progress()
        if self._report is None or self._report.records != self._counts:
            self._report = await self._build_results()
        if end.status is ProductStatus.CANCELED:
            return JobEnds(end.status, f"{end.reason} ({self._counts_text()})", end.actor)
        return end

    # ---- activities ----------------------------------------------------------------------------

    async def _record_job(self) -> None:
        await self._ledger_call(record_batch_job, self._job)

    async def _count_records(self) -> RecordCounts:
        return await self._ledger_call(count_batch_records, self._job.job_id)

    async def _build_results(self) -> BatchReport:
        assert self._validation is not None
        report = await workflow.execute_activity(
            build_batch_results,
            BuildResultsRequest(
                job_id=self._job.job_id,
                spec=self._job.spec,
                validation=self._validation,
                rounds=self._round,
                estimate=self._estimate,
            ),
            start_to_close_timeout=FILE_WORK_TIMEOUT,
            heartbeat_timeout=FILE_WORK_HEARTBEAT,
            retry_policy=LEDGER_RETRY,
        )
        self._counts = report.records
        return report

    async def _on_provider_event(self, provider_id: str) -> None:
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

    @workflow.signal
    def shard_stuck(self, child_id: str, text: str) -> None:
        """A shard's batch has sat in one status for long (text), or moved on ("")."""
        if text:
            self._stuck[child_id] = text
        else:
            self._stuck.pop(child_id, None)
        self._set_details()

    def _stuck_texts(self) -> list[str]:
        return [text for child, text in self._stuck.items() if child in self._running]

    # ---- small decisions -----------------------------------------------------------------------

    def _expired_only(self) -> bool:
        """The records left unresolved are there because batches ran out of their window."""
        return "expired" in self._last_round_statuses and all(
            status in ("expired", "completed") for status in self._last_round_statuses
        )

    def _unresolved_reason(self) -> str:
        c = self._counts
        if c.retryable == 0:
            why = "; ".join(self._batch_failures[-3:]) or "see the errors file"
            return f"none of the {c.total} records succeeded: {why}"
        return (
            f"{c.retryable} records still failing after {self._round} rounds "
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

    # ---- views ---------------------------------------------------------------------------------

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

    def _detail_parts(self) -> list[str]:
        parts = [self._progress_text(), *self._stuck_texts()]
        if self._running:
            parts.append(f"{len(self._running)} shards in flight")
        if self._estimate is not None and self._estimate.cost_batch_usd is not None:
            parts.append(f"estimate {format_usd(self._estimate.cost_batch_usd)}")
        if self._report is not None and self._report.cost_batch_usd is not None:
            parts.append(f"cost {format_usd(self._report.cost_batch_usd)}")
        return parts

    def _view(self) -> BatchProgress:
        fields = self._view_fields()
        stuck = self._stuck_texts()
        if stuck and fields["reason"] is None:
            fields["reason"] = "; ".join(stuck)
        return BatchProgress(
            **fields,
            round=self._round,
            records=self._counts,
            quarantined=self._quarantined,
            shards_in_flight=len(self._running),
            estimate=self._estimate,
            cost_usd=self._report.cost_batch_usd if self._report else None,
            report=self._report,
        )

    def _outcome(self) -> BatchOutcome:
        return BatchOutcome(**self._outcome_fields(), report=self._report)
