"""The product status model and its mapping from provider statuses (DESIGN.md, "status model").

Pure functions over plain strings, so workflows (inside the sandbox), activities and clients
share one definition. A provider status this module does not know raises
`UnknownProviderStatus`: the SDK or the API may be newer than this table, and guessing would
hide a job's real state.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from pydantic import BaseModel


class ProductStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    NEEDS_REVIEW = "needs_review"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"


class Lane(StrEnum):
    INTERACTIVE = "interactive"
    BACKGROUND = "background"
    BATCH = "batch"
    APPROVAL = "approval"


class Action(StrEnum):
    """Operator controls, each recorded in the audit trail with who and when."""

    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    RETRY = "retry"
    ESCALATE = "escalate"
    ARCHIVE = "archive"


class EventKind(StrEnum):
    """Kinds of entries in a job's audit trail."""

    CREATED = "created"
    STATUS_CHANGED = "status_changed"
    PROVIDER_CALLED = "provider_called"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELED = "canceled"
    RETRIED = "retried"
    ESCALATED = "escalated"
    ARCHIVED = "archived"
    SIDE_EFFECT_RAN = "side_effect_ran"
    SIDE_EFFECT_FAILED = "side_effect_failed"
    NOTE = "note"
    # A create retried after an uncertain try, at a provider that cannot find the first one
    # again (Responses has no list): a second object may exist, and it may be billed.
    POSSIBLE_DUPLICATE = "possible_duplicate"


# Provider status values, from the OpenAI contract (Response.status and Batch.status).
RESPONSE_STATUSES: Final = (
    "queued",
    "in_progress",
    "completed",
    "failed",
    "cancelled",
    "incomplete",
)
BATCH_STATUSES: Final = (
    "validating",
    "failed",
    "in_progress",
    "finalizing",
    "completed",
    "expired",
    "cancelling",
    "cancelled",
)
TERMINAL_RESPONSE_STATUSES: Final = frozenset({"completed", "failed", "cancelled", "incomplete"})
TERMINAL_BATCH_STATUSES: Final = frozenset({"failed", "completed", "expired", "cancelled"})
TERMINAL_PRODUCT_STATUSES: Final = frozenset(
    {ProductStatus.COMPLETED, ProductStatus.FAILED, ProductStatus.CANCELED, ProductStatus.EXPIRED}
)


class UnknownProviderStatus(ValueError):
    """The provider reported a status this version of Laneway has no mapping for."""

    def __init__(self, kind: str, value: str, known: tuple[str, ...]) -> None:
        super().__init__(
            f"unknown {kind} status {value!r}: Laneway knows {', '.join(known)}; "
            "the provider or SDK may be newer than Laneway's status table"
        )
        self.kind = kind
        self.value = value


def _require_known(kind: str, value: str, known: tuple[str, ...]) -> None:
    if value not in known:
        raise UnknownProviderStatus(kind, value, known)


def product_status_for_response(response_status: str, *, review_wanted: bool) -> ProductStatus:
    """Product status of a background job whose response has `response_status`.

    `review_wanted` is the job's review policy applied to this outcome (see
    `ReviewPolicy.wants_review`). An incomplete response nobody reviews counts as failed:
    its output was cut short, and `response_reason` says why.
    """
    _require_known("response", response_status, RESPONSE_STATUSES)
    if response_status == "queued":
        return ProductStatus.QUEUED
    if response_status == "in_progress":
        return ProductStatus.RUNNING
    if response_status == "cancelled":
        return ProductStatus.CANCELED
    if response_status == "failed":
        return ProductStatus.FAILED
    if review_wanted:
        return ProductStatus.NEEDS_REVIEW
    return ProductStatus.COMPLETED if response_status == "completed" else ProductStatus.FAILED


def product_status_for_batch(
    batch_status: str,
    *,
    review_wanted: bool,
    unresolved_failed_records: int = 0,
    resubmission_left: bool = False,
) -> ProductStatus:
    """Product status of a batch job whose provider batch has `batch_status`.

    `unresolved_failed_records`: records still failing after the retry budget; a completed
    batch with any is failed. `resubmission_left`: an expired batch that will be resubmitted
    is still running.
    """
    _require_known("batch", batch_status, BATCH_STATUSES)
    if batch_status == "validating":
        return ProductStatus.QUEUED
    if batch_status in ("in_progress", "finalizing"):
        return ProductStatus.RUNNING
    if batch_status in ("cancelling", "cancelled"):
        return ProductStatus.CANCELED
    if batch_status == "failed":
        return ProductStatus.FAILED
    if batch_status == "expired":
        return ProductStatus.RUNNING if resubmission_left else ProductStatus.EXPIRED
    if unresolved_failed_records > 0:
        return ProductStatus.FAILED
    return ProductStatus.NEEDS_REVIEW if review_wanted else ProductStatus.COMPLETED


def is_terminal(status: ProductStatus) -> bool:
    """Whether the job has ended (a failed job may still be retried by an operator)."""
    return status in TERMINAL_PRODUCT_STATUSES


def is_terminal_response_status(response_status: str) -> bool:
    _require_known("response", response_status, RESPONSE_STATUSES)
    return response_status in TERMINAL_RESPONSE_STATUSES


def is_terminal_batch_status(batch_status: str) -> bool:
    _require_known("batch", batch_status, BATCH_STATUSES)
    return batch_status in TERMINAL_BATCH_STATUSES


_INCOMPLETE_REASONS: Final = {
    "max_output_tokens": (
        "the output reached max_output_tokens before it finished: "
        "raise max_output_tokens or shorten the task"
    ),
    "content_filter": "the provider's content filter stopped the output",
}


def response_reason(
    response_status: str,
    *,
    error_code: str | None = None,
    error_message: str | None = None,
    incomplete_reason: str | None = None,
) -> str | None:
    """A sentence a person can act on for a failed, incomplete or cancelled response.

    None for statuses that need no explanation (queued, in_progress, completed).
    """
    _require_known("response", response_status, RESPONSE_STATUSES)
    if response_status == "failed":
        code = error_code or "unknown_error"
        message = error_message or "no message from the provider"
        return f"the provider failed the response ({code}): {message}"
    if response_status == "incomplete":
        if incomplete_reason is None:
            return "the output is incomplete; the provider gave no reason"
        return _INCOMPLETE_REASONS.get(
            incomplete_reason, f"the output is incomplete ({incomplete_reason})"
        )
    if response_status == "cancelled":
        return "the response was cancelled at the provider"
    return None


class JobFacts(BaseModel):
    """What decides the actions a job takes now. Every surface shows `allowed_actions(facts)`.

    `open`: the job's workflow still takes actions (a failed job held for a retry is open; an
    ended job takes only ledger actions). `retry_possible`: False when nothing a retry changes
    (the input failed validation, or no record is left to resend). `decision`: a reviewer's
    verdict already given at the current gate ("approved" or "rejected").
    """

    status: ProductStatus
    open: bool = True
    escalated: bool = False
    side_effect_started: bool = False
    retry_possible: bool = True
    archived: bool = False
    decision: str | None = None


def allowed_actions(facts: JobFacts) -> list[str]:
    """Operator actions the job accepts now, in a fixed order (approve, reject, ... archive)."""
    return [action.value for action in Action if refusal_reason(action, facts) is None]


def refusal_reason(action: Action | str, facts: JobFacts) -> str | None:
    """Why the job refuses `action` now, in words for a person; None when it accepts it."""
    action = Action(action)
    if action is Action.ARCHIVE:
        return _archive_refusal(facts)
    if not facts.open:
        return _closed_refusal(action, facts)
    if action in (Action.APPROVE, Action.REJECT, Action.ESCALATE):
        return _review_refusal(action, facts)
    status = facts.status.value
    if action is Action.CANCEL:
        if is_terminal(facts.status):
            return f"cannot cancel a job that is {status}"
        if facts.side_effect_started:
            return "the side effect has already started; it cannot be cancelled"
        return None
    return _retry_refusal(facts)


def _archive_refusal(facts: JobFacts) -> str | None:
    if facts.archived:
        return "the job is already archived"
    if not is_terminal(facts.status):
        if not facts.open:
            return "the job is ending; archive it once it has ended"
        return f"cannot archive a job that is {facts.status.value}; cancel it first"
    return None


def _closed_refusal(action: Action, facts: JobFacts) -> str:
    """A job that is ending or has ended takes no workflow action; say what is left."""
    status = facts.status.value
    if not is_terminal(facts.status):
        return f"the job is ending ({status}); it takes no more actions"
    if action is Action.RETRY and facts.status is not ProductStatus.COMPLETED:
        retry = _retry_refusal(facts.model_copy(update={"archived": False}))
        if retry is not None:
            return retry
    if facts.archived:
        return f"the job has ended ({status}) and is archived; it takes no more actions"
    return f"the job has ended ({status}); it takes no more actions but archive"


def _retry_refusal(facts: JobFacts) -> str | None:
    if facts.status not in (ProductStatus.FAILED, ProductStatus.EXPIRED):
        return f"cannot retry a job that is {facts.status.value}"
    if not facts.retry_possible:
        return "a retry would fail the same way: fix the input and submit a new job"
    if facts.archived:
        return "the job is archived"
    return None


def _review_refusal(action: Action, facts: JobFacts) -> str | None:
    if facts.decision is not None:
        return f"the job was already {facts.decision}"
    if facts.status is not ProductStatus.NEEDS_REVIEW:
        return f"cannot {action.value} a job that is {facts.status.value}"
    if action is Action.ESCALATE and facts.escalated:
        return "the job is already escalated"
    return None


def batch_job_ending(*, succeeded: int, unresolved: int, expired_only: bool) -> ProductStatus:
    """How a batch job ends once its rounds are done (DESIGN.md's table, batch column).

    `unresolved`: records still failing for a retryable reason after the round budget;
    `expired_only`: they are left because batches ran out of their window. A job in which no
    record succeeded (e.g. the provider failed its batch as a whole) has failed.
    """
    if unresolved > 0:
        return ProductStatus.EXPIRED if expired_only else ProductStatus.FAILED
    return ProductStatus.COMPLETED if succeeded > 0 else ProductStatus.FAILED
