"""The batch lane: what a batch job is, and the messages its workflows and activities pass.

A batch job turns a JSONL backlog (ready request lines, or plain records plus a request
template) into OpenAI batches of at most 50,000 requests and 200 MB each, follows them, sends
the records that failed for a retryable reason again in later rounds, and joins the results
back onto the input. Everything here travels through workflow history, so it holds ids,
counts and artifact references: the lines themselves live in the artifact store and the
per-record states in the ledger.
"""

from __future__ import annotations

import re
import string
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from laneway.background import PollingPolicy
from laneway.jobs import (
    JOB_TYPE_PATTERN,
    RECORDED,
    ArtifactRef,
    JobId,
    ReviewExpiryAction,
    ReviewPolicy,
    SideEffect,
    Usage,
    check_metadata,
)
from laneway.pricing import Usd
from laneway.status import JobFacts, ProductStatus

# Provider limits (contract section 1): per input file.
MAX_REQUESTS_PER_BATCH: Final = 50_000
MAX_BATCH_FILE_BYTES: Final = 200 * 1024 * 1024
MAX_EMBEDDING_INPUTS_PER_BATCH: Final = 50_000
# Laneway's own guards: a plan stays small enough for workflow history.
MAX_SHARDS_PER_ROUND: Final = 200
MAX_REPORTED_LINE_ERRORS: Final = 20
BATCH_ENDPOINTS: Final = ("/v1/responses", "/v1/chat/completions", "/v1/embeddings")

# Activity names: workflows refer to activities by name, never by their implementation.
RECORD_BATCH_JOB: Final = "record_batch_job"
VALIDATE_BATCH_INPUT: Final = "validate_batch_input"
PLAN_BATCH: Final = "plan_batch"
SUBMIT_SHARD: Final = "submit_batch_shard"
WAIT_FOR_BATCH_CHANGE: Final = "wait_for_batch_change"
GET_BATCH: Final = "get_batch"
CANCEL_BATCH: Final = "cancel_batch"
INGEST_SHARD: Final = "ingest_batch_shard"
PLAN_RETRY_ROUND: Final = "plan_retry_round"
COUNT_RECORDS: Final = "count_batch_records"
BUILD_BATCH_RESULTS: Final = "build_batch_results"
RUN_BATCH_SIDE_EFFECT: Final = "run_batch_side_effect"
# The poll found nothing new: benign, retried on the polling schedule.
BATCH_UNCHANGED: Final = "BatchUnchanged"
# The batch was refused because the organisation's enqueued-token limit is reached.
TOKEN_LIMIT_EXCEEDED: Final = "token_limit_exceeded"


class InputFormat(StrEnum):
    REQUESTS = "requests"  # ready batch lines: custom_id, method, url, body
    RECORDS = "records"  # plain JSON objects, turned into lines by a RequestTemplate


class BadLinePolicy(StrEnum):
    FAIL = "fail"  # any bad line fails the job before the provider is called
    QUARANTINE = "quarantine"  # bad lines go to a quarantine file and the report; the rest runs


class RecordState(StrEnum):
    """A record's state in the ledger."""

    PENDING = "pending"  # in a round, no result yet
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # with an error code; `retryable` says whether a round may resend it
    MISSING = "missing"  # its batch ended without a result for it (retryable)


class RequestTemplate(BaseModel):
    """How a plain record becomes a request body.

    Exactly one of `prompt_template` (str.format placeholders naming record fields, e.g.
    "Classify: {title}") or `input_field` (the record field that is the input) is given.
    """

    endpoint: Literal["/v1/responses", "/v1/chat/completions", "/v1/embeddings"]
    model: str = Field(min_length=1, max_length=100)
    prompt_template: str | None = Field(default=None, min_length=1, max_length=100_000)
    input_field: str | None = Field(default=None, min_length=1, max_length=200)
    id_field: str | None = Field(
        default=None, description="record field used as custom_id; None generates line-<n>"
    )
    instructions: str | None = Field(default=None, max_length=100_000)
    max_output_tokens: int | None = Field(default=None, ge=16, le=1_000_000)
    body: dict[str, Any] = Field(
        default_factory=dict, description="extra body parameters, e.g. temperature"
    )

    @model_validator(mode="after")
    def _one_source(self) -> RequestTemplate:
        if (self.prompt_template is None) == (self.input_field is None):
            raise ValueError(
                "give exactly one of template.prompt_template (e.g. 'Classify: {title}') or "
                "template.input_field (the record field holding the input)"
            )
        if self.prompt_template is not None:
            self.template_fields()
        return self

    def template_fields(self) -> list[str]:
        """The record fields the prompt template names; raises ValueError for a bad template."""
        if self.prompt_template is None:
            return []
        fields = []
        try:
            parsed = list(string.Formatter().parse(self.prompt_template))
        except ValueError as error:
            raise ValueError(f"template.prompt_template is malformed: {error}") from None
        for _text, name, spec, conversion in parsed:
            if name is None:
                continue
            if not name or name.isdigit():
                raise ValueError(
                    "template.prompt_template placeholders name record fields, e.g. {title}; "
                    "write {{ and }} for literal braces"
                )
            _check_format_spec(name, spec, conversion)
            fields.append(name)
        return fields


# A placeholder's format spec: fill/align, sign, width, grouping, precision, type, and
# nothing nested. Width and precision are bounded, so a template cannot ask a worker for
# gigabytes of padding (`{title:>400000000}`).
MAX_FORMAT_WIDTH: Final = 1_000
MAX_FORMAT_PRECISION: Final = 100
_FORMAT_SPEC = re.compile(
    r"(?:[^{}]?[<>=^])?[+\- ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<precision>\d+))?[bcdeEfFgGnosxX%]?"
)


def _check_format_spec(name: str, spec: str | None, conversion: str | None) -> None:
    """Refuse a placeholder's format spec that is nested, unknown or unbounded."""
    if conversion not in (None, "r", "s", "a"):
        raise ValueError(
            f"template.prompt_template placeholder {{{name}}} has an unknown conversion "
            f"!{conversion}; use !r, !s or !a"
        )
    if not spec:
        return
    match = _FORMAT_SPEC.fullmatch(spec)
    if match is None:
        raise ValueError(
            f"template.prompt_template placeholder {{{name}:{spec}}} has a format spec that is "
            "not allowed: use a plain {field} or a simple spec such as {score:.1f} or {name:<20}"
        )
    width = int(match["width"] or 0)
    precision = int(match["precision"] or 0)
    if width > MAX_FORMAT_WIDTH or precision > MAX_FORMAT_PRECISION:
        raise ValueError(
            f"template.prompt_template placeholder {{{name}:{spec}}} asks for a width or "
            f"precision above the limit (width {MAX_FORMAT_WIDTH}, precision "
            f"{MAX_FORMAT_PRECISION})"
        )


class ShardLimits(BaseModel):
    """How big one provider batch may be; lower than the provider's limits when asked."""

    max_requests: int = Field(default=MAX_REQUESTS_PER_BATCH, ge=1, le=MAX_REQUESTS_PER_BATCH)
    max_bytes: int = Field(default=MAX_BATCH_FILE_BYTES, ge=1024, le=MAX_BATCH_FILE_BYTES)


class BatchJobSpec(BaseModel):
    """A batch job as a product asks for it."""

    job_type: str = Field(pattern=JOB_TYPE_PATTERN)
    workspace: str = Field(min_length=1, max_length=200)
    requested_by: str = Field(min_length=1, max_length=200)
    input: ArtifactRef = Field(description="the JSONL input in the artifact store")
    input_format: InputFormat = InputFormat.REQUESTS
    template: RequestTemplate | None = None
    endpoint: Literal["/v1/responses", "/v1/chat/completions", "/v1/embeddings"] | None = Field(
        default=None, description="requests format: the only endpoint allowed; None = the first"
    )
    bad_lines: BadLinePolicy = BadLinePolicy.FAIL
    shard_limits: ShardLimits = ShardLimits()
    max_line_bytes: int = Field(default=8 * 1024 * 1024, ge=256, le=MAX_BATCH_FILE_BYTES)
    max_input_bytes: int = Field(
        default=20 * 1024**3, ge=1, description="the whole input; a guard against mistakes"
    )
    max_shards_in_flight: int = Field(
        default=4, ge=1, le=100, description="for the provider's enqueued-token limit"
    )
    max_rounds: int = Field(default=3, ge=1, le=10, description="round 1 plus retry rounds")
    expected_output_tokens: int = Field(
        default=256, ge=0, description="per request, for the estimate when no max is set"
    )
    review_policy: ReviewPolicy = ReviewPolicy.AUTO
    side_effect: SideEffect | None = None
    review_deadline: timedelta = Field(default=timedelta(days=3), gt=timedelta(0))
    review_expiry_action: ReviewExpiryAction = ReviewExpiryAction.EXPIRE
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("metadata")
    @classmethod
    def _metadata_within_limits(cls, value: dict[str, str]) -> dict[str, str]:
        return check_metadata(value)

    @model_validator(mode="after")
    def _consistent(self) -> BatchJobSpec:
        if self.input_format is InputFormat.RECORDS and self.template is None:
            raise ValueError(
                "input_format 'records' needs a template that turns records into requests"
            )
        if self.input_format is InputFormat.REQUESTS and self.template is not None:
            raise ValueError("a template is only used with input_format 'records'")
        if self.side_effect is not None and self.review_policy is not ReviewPolicy.REQUIRED:
            raise ValueError(
                f"a side effect ({self.side_effect.kind}) runs only after a reviewer approves: "
                "set review_policy to 'required' or remove side_effect"
            )
        if self.review_policy is ReviewPolicy.ON_INCOMPLETE:
            raise ValueError("batch jobs take review_policy 'auto' or 'required'")
        if self.max_line_bytes > self.shard_limits.max_bytes:
            raise ValueError("max_line_bytes cannot exceed shard_limits.max_bytes")
        return self


class BatchJobInput(BaseModel):
    job_id: JobId
    spec: Annotated[BatchJobSpec, RECORDED]
    resume: BatchResume | None = Field(
        default=None, description="set by the job itself when it continues as a new run"
    )
    continue_as_new_after_events: int = Field(
        default=2000, ge=1, description="between rounds, a longer history starts a new run"
    )
    polling: PollingPolicy = PollingPolicy(max_interval=timedelta(minutes=5))
    plan_approval_above_usd: Usd | None = Field(
        default=None, description="the workspace's threshold: a dearer plan waits for approval"
    )
    token_limit_backoff: timedelta = Field(
        default=timedelta(minutes=10),
        description="wait before resubmitting a batch refused for the enqueued-token limit",
    )


# ---- validation and plan -----------------------------------------------------------------


class LineError(BaseModel):
    line: int = Field(description="1-based line number in the input")
    code: str
    message: str


class ValidationReport(BaseModel):
    """What validation found; the requests themselves are in `requests` (one line each)."""

    lines_read: int
    accepted: int
    rejected: int
    first_errors: list[LineError]
    endpoint: str | None
    model: str | None
    requests: ArtifactRef | None = Field(description="accepted lines, normalised, input order")
    quarantine: ArtifactRef | None = Field(description="rejected lines with their errors")
    input_bytes: int

    def summary(self) -> str:
        """The first errors with line numbers, then how many more: for a failure reason."""
        shown = "; ".join(f"line {e.line}: {e.message}" for e in self.first_errors)
        more = self.rejected - len(self.first_errors)
        suffix = f"; and {more} more bad line{'s' if more != 1 else ''}" if more > 0 else ""
        return f"{self.rejected} of {self.lines_read} input lines are invalid: {shown}{suffix}"


class ShardRef(BaseModel):
    round: int = Field(ge=1)
    index: int = Field(ge=0)
    requests: int = Field(ge=1)
    file: ArtifactRef
    estimated_input_tokens: int = Field(ge=0)


class Estimate(BaseModel):
    """Tokens and cost of a set of requests, before the provider ran them."""

    input_tokens: int
    output_tokens: int
    cost_batch_usd: Usd | None
    cost_standard_usd: Usd | None


class RoundPlan(BaseModel):
    round: int
    requests: int
    shards: list[ShardRef]
    estimate: Estimate


class PlanRequest(BaseModel):
    job_id: str
    spec: Annotated[BatchJobSpec, RECORDED]
    validation: ValidationReport


class RetryRoundRequest(BaseModel):
    job_id: str
    spec: Annotated[BatchJobSpec, RECORDED]
    validation: ValidationReport
    round: int = Field(ge=2, description="the round to plan; its records come from round - 1")


class BatchResume(BaseModel):
    """Where a batch job continues after a continue-as-new between rounds."""

    validation: ValidationReport
    next_plan: RoundPlan
    rounds_allowed: int
    counts: RecordCounts
    estimate: Estimate | None
    quarantined: int
    provider_ids: list[str]
    audit_events: int
    created_at: datetime
    escalated: bool
    unexpected_lines: int = 0


# ---- one shard ---------------------------------------------------------------------------


class ShardJob(BaseModel):
    """What a shard's child workflow needs: the file to send and how to wait."""

    job_id: str
    shard: ShardRef
    endpoint: str
    polling: PollingPolicy
    token_limit_backoff: timedelta
    max_token_limit_resubmits: int = 20


class SubmitShardRequest(BaseModel):
    job_id: str
    shard: ShardRef
    endpoint: str
    idempotency_key: str
    submission: int = Field(ge=1)


class BatchSnapshot(BaseModel):
    """The provider's view of one batch (no lines)."""

    batch_id: str
    status: str
    total: int = 0
    completed: int = 0
    failed: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    error_codes: list[str] = Field(default_factory=list)
    error_messages: list[str] = Field(default_factory=list)


class WaitForBatchRequest(BaseModel):
    batch_id: str
    last_status: str


class IngestRequest(BaseModel):
    job_id: str
    shard: ShardRef
    batch: BatchSnapshot | None = Field(description="None: stopped before it was submitted")
    batch_failure: str | None = Field(
        default=None, description="the batch failed as a whole: every record gets this error"
    )
    batch_failure_retryable: bool = False
    stop_reason: str | None = None


class ShardOutcome(BaseModel):
    round: int
    index: int
    batch_ids: list[str]
    final_status: str
    succeeded: int
    failed: int
    missing: int
    unexpected: int = Field(description="result lines whose custom_id was not in the shard")
    usage: Usage
    output_file: ArtifactRef | None
    error_file: ArtifactRef | None
    batch_failure: str | None = Field(
        default=None, description="the provider failed the batch as a whole: its reason"
    )
    canceled_elsewhere: bool = Field(
        default=False, description="the provider batch was cancelled by someone but Laneway"
    )


# ---- progress and result -----------------------------------------------------------------


class RecordCounts(BaseModel):
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    retryable: int = 0
    pending: int = 0

    @property
    def permanent_failures(self) -> int:
        return self.failed - self.retryable


class BatchProgress(BaseModel):
    """The product view of a batch job, answered by the workflow's `status` query."""

    job_id: str
    status: ProductStatus
    lane: str
    job_type: str
    workspace: str
    requested_by: str
    round: int
    records: RecordCounts
    quarantined: int
    shards_in_flight: int
    provider_ids: list[str]
    created_at: datetime
    updated_at: datetime
    reason: str | None
    estimate: Estimate | None
    cost_usd: Usd | None
    allowed_actions: list[str]
    facts: JobFacts = Field(description="what the allowed actions were computed from")
    report: BatchReport | None = Field(
        default=None, description="once results are built: where they are and what they cost"
    )


class BuildResultsRequest(BaseModel):
    job_id: str
    spec: Annotated[BatchJobSpec, RECORDED]
    validation: ValidationReport
    rounds: int
    estimate: Estimate | None


class BatchReport(BaseModel):
    """The job's result: where the files are and what it all cost."""

    records: RecordCounts
    quarantined: int
    rounds: int
    results: ArtifactRef
    errors: ArtifactRef
    usage: Usage
    model: str | None
    cost_batch_usd: Usd | None
    cost_standard_usd: Usd | None
    cost_per_succeeded_record_usd: Usd | None
    report: ArtifactRef = Field(description="this report as JSON, with the first errors")


class BatchSideEffectRequest(BaseModel):
    job_id: str
    spec: Annotated[BatchJobSpec, RECORDED]
    report: BatchReport


class BatchOutcome(BaseModel):
    job_id: str
    status: ProductStatus
    reason: str | None
    report: BatchReport | None
    side_effect_ran: bool


BatchResume.model_rebuild()
BatchProgress.model_rebuild()
BatchJobInput.model_rebuild()
