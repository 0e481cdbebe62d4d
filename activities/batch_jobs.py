"""Activities of the batch lane that work on files and the ledger (no provider calls).

The work itself lives in batch_input.py (validation, planning) and batch_results.py (the
joined results and report); these wrappers run it in a thread with heartbeats and turn a
plan that cannot be made into an error that says what to change.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.batch_input import PlanTooLarge, plan_first_round, plan_retry_round, validate_input
from activities.batch_results import build_results
from activities.heartbeat import beating, in_thread
from activities.side_effects import DeliveryPolicy, post_signed
from laneway.batch import (
    BUILD_BATCH_RESULTS,
    COUNT_RECORDS,
    PLAN_BATCH,
    PLAN_RETRY_ROUND,
    RECORD_BATCH_JOB,
    RUN_BATCH_SIDE_EFFECT,
    VALIDATE_BATCH_INPUT,
    BatchJobInput,
    BatchJobSpec,
    BatchReport,
    BatchSideEffectRequest,
    BuildResultsRequest,
    PlanRequest,
    RecordCounts,
    RetryRoundRequest,
    RoundPlan,
    ValidationReport,
)
from laneway.jobs import ArtifactRef, DeliverToOutbox
from laneway.status import EventKind
from store.artifacts import ArtifactStore
from store.ledger.batch_records import BatchRecords
from store.ledger.records import NewJob
from store.ledger.repository import Ledger

PLAN_REFUSED = "BatchPlanRefused"


@dataclass
class BatchJobActivities:
    ledger: Ledger
    records: BatchRecords
    artifacts: ArtifactStore
    http: httpx.AsyncClient
    policy: DeliveryPolicy

    @activity.defn(name=RECORD_BATCH_JOB)
    async def record_batch_job(self, job: BatchJobInput) -> None:
        """Written before anything else; repeating it changes nothing."""
        workflow_id = activity.info().workflow_id or job.job_id
        await in_thread(
            lambda: self.ledger.record_job(NewJob.batch(job.job_id, workflow_id, job.spec))
        )

    @activity.defn(name=VALIDATE_BATCH_INPUT)
    async def validate_batch_input(self, spec: BatchJobSpec) -> ValidationReport:
        return await in_thread(lambda: validate_input(self.artifacts, spec))

    @activity.defn(name=PLAN_BATCH)
    async def plan_batch(self, request: PlanRequest) -> RoundPlan:
        try:
            return await in_thread(
                lambda: plan_first_round(
                    self.artifacts, self.records, request.job_id, request.spec, request.validation
                )
            )
        except PlanTooLarge as error:
            raise ApplicationError(str(error), type=PLAN_REFUSED, non_retryable=True) from None

    @activity.defn(name=PLAN_RETRY_ROUND)
    async def plan_retry_round(self, request: RetryRoundRequest) -> RoundPlan:
        return await in_thread(
            lambda: plan_retry_round(
                self.artifacts,
                self.records,
                request.job_id,
                request.spec,
                request.validation,
                request.round,
            )
        )

    @activity.defn(name=COUNT_RECORDS)
    async def count_batch_records(self, job_id: str) -> RecordCounts:
        return await in_thread(lambda: self.records.counts(job_id))

    @activity.defn(name=BUILD_BATCH_RESULTS)
    async def build_batch_results(self, request: BuildResultsRequest) -> BatchReport:
        return await in_thread(lambda: build_results(self.artifacts, self.records, request))

    @activity.defn(name=RUN_BATCH_SIDE_EFFECT)
    async def run_batch_side_effect(self, request: BatchSideEffectRequest) -> str:
        """Deliver the results file (outbox) or the report (signed POST), once per job."""
        effect = request.spec.side_effect
        if effect is None:
            raise ApplicationError("the job has no side effect", non_retryable=True)
        job_id = request.job_id
        claimed = await in_thread(lambda: self.ledger.claim_side_effect(job_id, effect.kind))
        if not claimed:
            earlier = await in_thread(lambda: self.ledger.get_side_effect(job_id))
            if earlier is not None and earlier.outcome is not None:
                return earlier.outcome  # delivered before: never twice
        async with beating():  # a worker that dies mid-delivery shows within ~30 s
            report = self.artifacts.read_bytes(request.report.report)
            if isinstance(effect, DeliverToOutbox):
                where = await in_thread(lambda: self._deliver(effect, job_id, request.report))
            else:
                where = await post_signed(self.http, self.policy, effect, job_id, report)
        await in_thread(lambda: self._record_delivery(job_id, where))
        return where

    def _deliver(self, effect: DeliverToOutbox, job_id: str, report: BatchReport) -> str:
        directory = self.policy.outbox_directory(effect, job_id)
        _copy_atomically(self.artifacts, report.results, directory / f"{job_id}.results.jsonl")
        _copy_atomically(self.artifacts, report.errors, directory / f"{job_id}.errors.jsonl")
        _copy_atomically(self.artifacts, report.report, directory / f"{job_id}.report.json")
        return str(directory / f"{job_id}.results.jsonl")

    def _record_delivery(self, job_id: str, where: str) -> None:
        self.ledger.finish_side_effect(job_id, "delivered", note=where)
        self.ledger.record_event(
            job_id, EventKind.SIDE_EFFECT_RAN, f"{job_id}/side-effect", note=where
        )


def _copy_atomically(store: ArtifactStore, ref: ArtifactRef, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        store.open(ref) as source,
        tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".part") as part,
    ):
        shutil.copyfileobj(source, part, 1024 * 1024)
        part.flush()
        os.fsync(part.fileno())
    os.replace(part.name, path)
