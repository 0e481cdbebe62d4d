"""Typed definitions of the activities that workflows call; the worker registers their
implementations (activities/) under the same names.

Workflows pass these functions to `workflow.execute_activity`, so mypy checks each call's
argument and result, and the SDK takes the activity name and result type from them. They never
run: `tests/unit/test_activity_types.py` checks every definition against the implementation the
worker registers (same name, same argument and result types).
"""

from __future__ import annotations

from temporalio import activity

from laneway.background import (
    CANCEL_RESPONSE,
    GET_RESPONSE,
    RECORD_JOB,
    RECORD_STATUS,
    RUN_SIDE_EFFECT,
    START_RESPONSE,
    STORE_RESULT,
    WAIT_FOR_RESPONSE_CHANGE,
    BackgroundJobInput,
    ResponseSnapshot,
    ResultSummary,
    SideEffectRequest,
    StartResponseRequest,
    StatusChange,
    StoreResultRequest,
    WaitForChangeRequest,
)
from laneway.batch import (
    BUILD_BATCH_RESULTS,
    CANCEL_BATCH,
    COUNT_RECORDS,
    GET_BATCH,
    INGEST_SHARD,
    PLAN_BATCH,
    PLAN_RETRY_ROUND,
    RECORD_BATCH_JOB,
    RUN_BATCH_SIDE_EFFECT,
    SUBMIT_SHARD,
    VALIDATE_BATCH_INPUT,
    WAIT_FOR_BATCH_CHANGE,
    BatchJobInput,
    BatchJobSpec,
    BatchReport,
    BatchSideEffectRequest,
    BatchSnapshot,
    BuildResultsRequest,
    IngestRequest,
    PlanRequest,
    RecordCounts,
    RetryRoundRequest,
    RoundPlan,
    ShardOutcome,
    SubmitShardRequest,
    ValidationReport,
    WaitForBatchRequest,
)
from laneway.lifecycle import CLOSE_AS_CANCELED, CloseAsCanceledRequest
from laneway.stack_check import CHECK_PROVIDER_ACTIVITY, ProviderCheck


class NotRunHere(NotImplementedError):
    """A definition was called directly: the worker runs the implementation in activities/."""

    def __init__(self) -> None:
        super().__init__("activity definitions are called through workflow.execute_activity")


# ---- every job -------------------------------------------------------------------------------


@activity.defn(name=RECORD_STATUS)
async def record_job_status(change: StatusChange) -> None:
    raise NotRunHere


@activity.defn(name=CLOSE_AS_CANCELED)
async def close_as_canceled(request: CloseAsCanceledRequest) -> None:
    raise NotRunHere


# ---- background lane -------------------------------------------------------------------------


@activity.defn(name=RECORD_JOB)
async def record_background_job(job: BackgroundJobInput) -> None:
    raise NotRunHere


@activity.defn(name=START_RESPONSE)
async def start_background_response(request: StartResponseRequest) -> ResponseSnapshot:
    raise NotRunHere


@activity.defn(name=WAIT_FOR_RESPONSE_CHANGE)
async def wait_for_response_change(request: WaitForChangeRequest) -> ResponseSnapshot:
    raise NotRunHere


@activity.defn(name=GET_RESPONSE)
async def get_response(response_id: str) -> ResponseSnapshot:
    raise NotRunHere


@activity.defn(name=CANCEL_RESPONSE)
async def cancel_response(response_id: str) -> ResponseSnapshot:
    raise NotRunHere


@activity.defn(name=STORE_RESULT)
async def store_response_result(request: StoreResultRequest) -> ResultSummary:
    raise NotRunHere


@activity.defn(name=RUN_SIDE_EFFECT)
async def run_side_effect(request: SideEffectRequest) -> str:
    raise NotRunHere


# ---- batch lane ------------------------------------------------------------------------------


@activity.defn(name=RECORD_BATCH_JOB)
async def record_batch_job(job: BatchJobInput) -> None:
    raise NotRunHere


@activity.defn(name=VALIDATE_BATCH_INPUT)
async def validate_batch_input(spec: BatchJobSpec) -> ValidationReport:
    raise NotRunHere


@activity.defn(name=PLAN_BATCH)
async def plan_batch(request: PlanRequest) -> RoundPlan:
    raise NotRunHere


@activity.defn(name=PLAN_RETRY_ROUND)
async def plan_retry_round(request: RetryRoundRequest) -> RoundPlan:
    raise NotRunHere


@activity.defn(name=COUNT_RECORDS)
async def count_batch_records(job_id: str) -> RecordCounts:
    raise NotRunHere


@activity.defn(name=BUILD_BATCH_RESULTS)
async def build_batch_results(request: BuildResultsRequest) -> BatchReport:
    raise NotRunHere


@activity.defn(name=RUN_BATCH_SIDE_EFFECT)
async def run_batch_side_effect(request: BatchSideEffectRequest) -> str:
    raise NotRunHere


@activity.defn(name=SUBMIT_SHARD)
async def submit_batch_shard(request: SubmitShardRequest) -> BatchSnapshot:
    raise NotRunHere


@activity.defn(name=WAIT_FOR_BATCH_CHANGE)
async def wait_for_batch_change(request: WaitForBatchRequest) -> BatchSnapshot:
    raise NotRunHere


@activity.defn(name=GET_BATCH)
async def get_batch(batch_id: str) -> BatchSnapshot:
    raise NotRunHere


@activity.defn(name=CANCEL_BATCH)
async def cancel_batch(batch_id: str) -> BatchSnapshot:
    raise NotRunHere


@activity.defn(name=INGEST_SHARD)
async def ingest_batch_shard(request: IngestRequest) -> ShardOutcome:
    raise NotRunHere


# ---- stack check -----------------------------------------------------------------------------


@activity.defn(name=CHECK_PROVIDER_ACTIVITY)
async def check_provider() -> ProviderCheck:
    raise NotRunHere
