"""The background lane's messages: what its workflow, activities and clients pass each other.

Everything here travels through Temporal history, so it holds ids, counts and references,
never prompt text or model output.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Final

from pydantic import BaseModel, Field

from laneway.jobs import RECORDED, ArtifactRef, JobId, JobSpec, Usage
from laneway.pricing import Usd
from laneway.status import JobFacts, ProductStatus

# Activity names: workflows refer to activities by name, never by their implementation.
RECORD_JOB: Final = "record_background_job"
RECORD_STATUS: Final = "record_job_status"
START_RESPONSE: Final = "start_background_response"
WAIT_FOR_RESPONSE_CHANGE: Final = "wait_for_response_change"
GET_RESPONSE: Final = "get_response"
CANCEL_RESPONSE: Final = "cancel_response"
STORE_RESULT: Final = "store_response_result"
RUN_SIDE_EFFECT: Final = "run_side_effect"
# Error types workflows tell apart: a provider refusal that retrying cannot fix, and
# a poll that found nothing new: benign, retried on the polling schedule.
RESPONSE_UNCHANGED: Final = "ResponseUnchanged"
PROVIDER_REJECTED: Final = "ProviderRejectedRequest"

REVIEWER_ROLE: Final = "reviewer"
OPERATOR_ROLE: Final = "operator"


def describe_duration(duration: timedelta) -> str:
    """`2h`, `3d`, `1d 6h`, `90s`: short, for reasons people read."""
    seconds = int(duration.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0s"


class Actor(BaseModel):
    """Who asks for a control action, as the calling surface authenticated them."""

    id: str = Field(min_length=1)
    workspace: str = Field(min_length=1)
    roles: frozenset[str] = frozenset()

    def may_review(self, workspace: str) -> bool:
        return self.workspace == workspace and REVIEWER_ROLE in self.roles

    def may_operate(self, workspace: str) -> bool:
        return self.workspace == workspace and bool({REVIEWER_ROLE, OPERATOR_ROLE} & self.roles)


class ControlRequest(BaseModel):
    """An operator's action (approve, reject, cancel, retry, escalate) with who and why."""

    actor: Actor
    note: str = Field(default="", max_length=2000)


class PollingPolicy(BaseModel):
    """How often to ask the provider: fast first, then backing off to a cap."""

    first_interval: timedelta = timedelta(seconds=1)
    backoff: float = Field(default=2.0, ge=1.0)
    max_interval: timedelta = timedelta(seconds=60)


class BackgroundJobInput(BaseModel):
    job_id: JobId
    spec: Annotated[JobSpec, RECORDED]
    polling: PollingPolicy = PollingPolicy()
    failed_hold: timedelta = Field(
        default=timedelta(days=7),
        description="how long a failed job stays open for an operator to retry it",
    )


class ResponseSnapshot(BaseModel):
    """The provider's view of one background response, without its output text."""

    response_id: str
    status: str
    model: str
    error_code: str | None = None
    error_message: str | None = None
    incomplete_reason: str | None = None
    usage: Usage | None = None


class StartResponseRequest(BaseModel):
    job_id: str
    attempt: int = Field(ge=1)
    idempotency_key: str
    spec: Annotated[JobSpec, RECORDED]


class WaitForChangeRequest(BaseModel):
    response_id: str
    last_status: str


class StoreResultRequest(BaseModel):
    job_id: str
    attempt: int
    response_id: str
    service_tier: str


class ResultSummary(BaseModel):
    """What the result store holds for one attempt: usage, cost and where the output is.

    `output` is None when the output was small enough to live inline in the ledger.
    `cost_usd` is None when the model has no known price.
    """

    attempt: int
    output: ArtifactRef | None
    output_chars: int
    usage: Usage
    model: str
    tier: str
    cost_usd: Usd | None


class StatusChange(BaseModel):
    """An entry for the audit trail: a status change, or an action when `to_status` is None."""

    job_id: str
    to_status: ProductStatus | None
    event_key: str
    actor: str = "laneway"
    note: str = ""
    kind: str = "status_changed"
    ends_job: bool = Field(default=False, description="the job's terminal status")


class SideEffectRequest(BaseModel):
    job_id: str
    spec: Annotated[JobSpec, RECORDED]
    result: ResultSummary


class JobView(BaseModel):
    """The product view of a job, answered by the workflow's `status` query."""

    job_id: str
    status: ProductStatus
    lane: str
    job_type: str
    workspace: str
    requested_by: str
    attempts: int
    provider_ids: list[str]
    created_at: datetime
    updated_at: datetime
    reason: str | None
    escalated: bool
    cost_usd: Usd | None
    allowed_actions: list[str]
    facts: JobFacts = Field(description="what the allowed actions were computed from")


class JobOutcome(BaseModel):
    """What the workflow returns when the job ends."""

    job_id: str
    status: ProductStatus
    reason: str | None
    attempts: int
    result: ResultSummary | None
    side_effect_ran: bool
