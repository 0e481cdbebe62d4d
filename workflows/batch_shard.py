"""BatchShardWorkflow: one shard of a batch job, from upload to its records in the ledger.

A child of BatchJobWorkflow, with the id `<job workflow id>/round-<r>/shard-<i>`. It submits
the shard (the idempotency key is derived from that id and the submission number), follows
the batch with a poll activity whose retries do the waiting, resubmits a batch the provider
refused for the enqueued-token limit after a durable backoff, and ingests the output and error
files. Asked to stop (a `stop` signal from its job, or Temporal cancellation), it cancels the
batch at the provider, waits for it to settle and still ingests the partial results.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from laneway.background import describe_duration
    from laneway.batch import (
        BATCH_UNCHANGED,
        TOKEN_LIMIT_EXCEEDED,
        BatchSnapshot,
        IngestRequest,
        ShardJob,
        ShardOutcome,
        SubmitShardRequest,
        WaitForBatchRequest,
    )
    from laneway.status import TERMINAL_BATCH_STATUSES, ProductStatus, product_status_for_batch
    from workflows.activity_types import (
        cancel_batch,
        get_batch,
        ingest_batch_shard,
        submit_batch_shard,
        wait_for_batch_change,
    )
    from workflows.job_common import HEARTBEAT_TIMEOUT, PROVIDER_CALL_TIMEOUT, PROVIDER_RETRY
    from workflows.waiting import out_of_time, poll_or_wake, signal_workflow, wait_for

# The provider ends every batch within its 24h window (expired at the latest); a batch still
# not ended after this is cancelled and ingested as it stands.
PROVIDER_DEADLINE = timedelta(hours=26)
INGEST_TIMEOUT = timedelta(minutes=30)
INGEST_HEARTBEAT = HEARTBEAT_TIMEOUT
# A batch that sits in one of these statuses for an hour or more is stuck: the shard says
# for how long and since when (its details, and its job's reason), looking again after 1h,
# 4h, 16h, ... in that status, so a day stuck adds a few events, not one per poll.
STUCK_STATUSES = ("validating", "finalizing", "cancelling")
STUCK_AFTER = timedelta(hours=1)
STUCK_CHECK_PATCH = "stuck-batch-says-since-when"


@workflow.defn
class BatchShardWorkflow:
    @workflow.init
    def __init__(self, job: ShardJob) -> None:
        self._job = job
        self._stop_reason: str | None = None
        self._provider_event_pending = False
        self._batch: BatchSnapshot | None = None
        self._batch_ids: list[str] = []
        self._cancel_sent = False
        self._status_since: datetime | None = None  # when the batch's status last changed
        self._stuck: str | None = None

    @workflow.run
    async def run(self, job: ShardJob) -> ShardOutcome:
        try:
            return await self._lifecycle()
        except asyncio.CancelledError:
            # Cancelled through Temporal (e.g. its job was terminated): the provider batch is
            # still cancelled and its partial results kept before the cancellation stands.
            self._stop_reason = self._stop_reason or "cancelled through Temporal"
            await self._settle_and_ingest()
            raise

    async def _lifecycle(self) -> ShardOutcome:
        self._show()
        submission = 0
        while True:
            if self._stop_reason is not None and self._batch is None:
                return await self._ingest(None, None)
            submission += 1
            batch = await self._submit(submission)
            batch = await self._follow(batch)
            if self._refused_for_token_limit(batch) and self._stop_reason is None:
                if submission <= self._job.max_token_limit_resubmits:
                    await wait_for(
                        lambda: self._stop_reason is not None, self._job.token_limit_backoff
                    )
                    self._batch = None
                    continue
                return await self._ingest(batch, self._token_limit_reason(batch), retryable=True)
            return await self._ingest(batch, self._failure_reason(batch))

    async def _settle_and_ingest(self) -> ShardOutcome:
        batch = self._batch
        if batch is None:
            return await self._ingest(None, None)
        batch = await self._follow(batch)
        return await self._ingest(batch, self._failure_reason(batch))

    # ---- the provider batch ------------------------------------------------------------------

    async def _submit(self, submission: int) -> BatchSnapshot:
        job = self._job
        request = SubmitShardRequest(
            job_id=job.job_id,
            shard=job.shard,
            endpoint=job.endpoint,
            idempotency_key=f"{workflow.info().workflow_id}/submission-{submission}",
            submission=submission,
        )
        batch = await workflow.execute_activity(
            submit_batch_shard,
            request,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=PROVIDER_RETRY,
        )
        self._batch = batch
        self._status_since = workflow.now()
        self._batch_ids.append(batch.batch_id)
        self._show()
        await self._tell_parent(batch.batch_id)
        return batch

    async def _tell_parent(self, batch_id: str) -> None:
        parent = workflow.info().parent
        if parent is not None:
            await signal_workflow(
                parent.workflow_id, "shard_batch_created", workflow.info().workflow_id, batch_id
            )

    async def _follow(self, batch: BatchSnapshot) -> BatchSnapshot:
        while batch.status not in TERMINAL_BATCH_STATUSES:
            if self._stop_reason is not None and not self._cancel_sent:
                self._cancel_sent = True
                batch = await self._provider(cancel_batch, batch.batch_id)
                continue
            changed = await self._next_change(batch)
            if changed.status != batch.status:
                self._status_since = workflow.now()
                if self._stuck is not None:
                    self._stuck = None
                    await self._tell_parent_stuck("")
            batch = changed
            self._batch = batch
            self._show()
        return batch

    async def _next_change(self, batch: BatchSnapshot) -> BatchSnapshot:
        """The poll's answer, or a fresh look when a provider event or a stop woke the shard."""
        polling = asyncio.create_task(
            poll_or_wake(
                wait_for_batch_change,
                WaitForBatchRequest(batch_id=batch.batch_id, last_status=batch.status),
                polling=self._job.polling,
                deadline=PROVIDER_DEADLINE,
                woken=lambda: (
                    self._provider_event_pending
                    or (self._stop_reason is not None and not self._cancel_sent)
                ),
            )
        )
        if batch.status in STUCK_STATUSES and workflow.patched(STUCK_CHECK_PATCH):
            await self._say_when_stuck(batch, polling)
        try:
            changed = await polling
        except ActivityError as error:
            if not out_of_time(error, BATCH_UNCHANGED):
                raise
            # Far past the provider's own window: stop waiting, keep what it produced.
            self._stop_reason = self._stop_reason or "the batch outlived its 24h window"
            return batch
        if changed is not None:
            return changed
        self._provider_event_pending = False
        return await self._provider(get_batch, batch.batch_id)

    async def _say_when_stuck(
        self, batch: BatchSnapshot, polling: asyncio.Task[BatchSnapshot | None]
    ) -> None:
        """While the poll waits, say how long the batch has sat in its status, and since when."""
        since = self._status_since or workflow.now()
        while not polling.done():
            elapsed = workflow.now() - since
            mark = STUCK_AFTER
            while mark <= elapsed:
                mark *= 4
            await workflow.wait([polling], timeout=(mark - elapsed).total_seconds())
            if polling.done():
                return
            elapsed = workflow.now() - since
            self._stuck = (
                f"provider batch {batch.batch_id} has been {batch.status} for "
                f"{describe_duration(elapsed)}, since {since:%Y-%m-%d %H:%M} UTC"
            )
            self._show()
            await self._tell_parent_stuck(self._stuck)

    async def _tell_parent_stuck(self, text: str) -> None:
        parent = workflow.info().parent
        if parent is not None:
            await signal_workflow(
                parent.workflow_id, "shard_stuck", workflow.info().workflow_id, text
            )

    async def _provider(
        self, call: Callable[[str], Awaitable[BatchSnapshot]], batch_id: str
    ) -> BatchSnapshot:
        return await workflow.execute_activity(
            call,
            batch_id,
            start_to_close_timeout=PROVIDER_CALL_TIMEOUT,
            retry_policy=PROVIDER_RETRY,
        )

    async def _ingest(
        self, batch: BatchSnapshot | None, failure: str | None, *, retryable: bool = False
    ) -> ShardOutcome:
        canceled_elsewhere = self._canceled_elsewhere(batch)
        stop_reason = self._stop_reason
        if canceled_elsewhere:
            stop_reason = "cancelled at the provider, not by Laneway"
        outcome = await workflow.execute_activity(
            ingest_batch_shard,
            IngestRequest(
                job_id=self._job.job_id,
                shard=self._job.shard,
                batch=batch,
                batch_failure=failure,
                batch_failure_retryable=retryable,
                stop_reason=stop_reason,
            ),
            start_to_close_timeout=INGEST_TIMEOUT,
            heartbeat_timeout=INGEST_HEARTBEAT,
            retry_policy=PROVIDER_RETRY,
        )
        return outcome.model_copy(
            update={
                "batch_ids": list(self._batch_ids),
                "batch_failure": failure,
                "canceled_elsewhere": canceled_elsewhere,
            }
        )

    def _canceled_elsewhere(self, batch: BatchSnapshot | None) -> bool:
        """The provider batch ended cancelled, and Laneway never asked for it."""
        if batch is None or self._cancel_sent:
            return False
        return _product_status(batch) is ProductStatus.CANCELED

    def _show(self) -> None:
        """The Web UI's current details: where the shard's provider batch is."""
        job, batch = self._job, self._batch
        status = _product_status(batch).value if batch else "submitting"
        parts = [f"**{status}**"]
        if batch is not None and batch.status != status:
            parts.append(f"provider: {batch.status}")
        if batch is not None:
            parts += [
                batch.batch_id,
                f"{batch.completed}/{batch.total or job.shard.requests} done",
                f"{batch.failed} failed",
            ]
        if self._stuck:
            parts.append(self._stuck)
        if self._stop_reason:
            parts.append(f"stopping: {self._stop_reason}")
        workflow.set_current_details(
            " · ".join(parts) + f"\n\nactions: on the job, {job.job_id} (this shard takes none)"
        )

    # ---- reasons -----------------------------------------------------------------------------

    @staticmethod
    def _refused_for_token_limit(batch: BatchSnapshot) -> bool:
        return batch.status == "failed" and TOKEN_LIMIT_EXCEEDED in batch.error_codes

    def _token_limit_reason(self, batch: BatchSnapshot) -> str:
        return (
            f"the provider refused the batch {self._job.max_token_limit_resubmits + 1} times for "
            f"its enqueued-token limit: {'; '.join(batch.error_messages)}"
        )

    @staticmethod
    def _failure_reason(batch: BatchSnapshot) -> str | None:
        if batch.status != "failed":
            return None
        details = "; ".join(
            f"{code}: {message}"
            for code, message in zip(batch.error_codes, batch.error_messages, strict=False)
        )
        return f"the provider failed batch {batch.batch_id}: {details or 'no reason given'}"

    # ---- signals -----------------------------------------------------------------------------

    @workflow.signal
    def provider_event(self, provider_id: str) -> None:
        """A webhook said something happened to this shard's batch: look now."""
        if provider_id in self._batch_ids:
            self._provider_event_pending = True

    @workflow.signal
    def stop(self, reason: str) -> None:
        """Cancel the batch at the provider and finish with the results it has."""
        self._stop_reason = self._stop_reason or reason


def _product_status(batch: BatchSnapshot) -> ProductStatus:
    """The shard's batch in product words (DESIGN.md's table); an expired batch's records go
    to the next round, so it is still running as far as the job is concerned."""
    return product_status_for_batch(batch.status, review_wanted=False, resubmission_left=True)
