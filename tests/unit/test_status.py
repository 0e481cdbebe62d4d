"""The status mapping covers every provider status value, from the contract's enum lists."""

from __future__ import annotations

import pytest

from laneway.status import (
    BATCH_STATUSES,
    RESPONSE_STATUSES,
    Action,
    JobFacts,
    ProductStatus,
    UnknownProviderStatus,
    allowed_actions,
    batch_job_ending,
    is_terminal,
    is_terminal_batch_status,
    is_terminal_response_status,
    product_status_for_batch,
    product_status_for_response,
    refusal_reason,
    response_reason,
)

# (provider status, review wanted) -> product status: one row per provider value.
RESPONSE_TABLE = {
    "queued": (ProductStatus.QUEUED, ProductStatus.QUEUED),
    "in_progress": (ProductStatus.RUNNING, ProductStatus.RUNNING),
    "completed": (ProductStatus.COMPLETED, ProductStatus.NEEDS_REVIEW),
    "failed": (ProductStatus.FAILED, ProductStatus.FAILED),
    "cancelled": (ProductStatus.CANCELED, ProductStatus.CANCELED),
    "incomplete": (ProductStatus.FAILED, ProductStatus.NEEDS_REVIEW),
}
BATCH_TABLE = {
    "validating": (ProductStatus.QUEUED, ProductStatus.QUEUED),
    "failed": (ProductStatus.FAILED, ProductStatus.FAILED),
    "in_progress": (ProductStatus.RUNNING, ProductStatus.RUNNING),
    "finalizing": (ProductStatus.RUNNING, ProductStatus.RUNNING),
    "completed": (ProductStatus.COMPLETED, ProductStatus.NEEDS_REVIEW),
    "expired": (ProductStatus.EXPIRED, ProductStatus.EXPIRED),
    "cancelling": (ProductStatus.CANCELED, ProductStatus.CANCELED),
    "cancelled": (ProductStatus.CANCELED, ProductStatus.CANCELED),
}
# The contract's enums, written out again so a value dropped from the module fails here.
CONTRACT_RESPONSE_STATUSES = {
    "queued",
    "in_progress",
    "completed",
    "failed",
    "cancelled",
    "incomplete",
}
CONTRACT_BATCH_STATUSES = {
    "validating",
    "failed",
    "in_progress",
    "finalizing",
    "completed",
    "expired",
    "cancelling",
    "cancelled",
}


def test_module_lists_every_contract_status() -> None:
    assert set(RESPONSE_STATUSES) == CONTRACT_RESPONSE_STATUSES
    assert set(BATCH_STATUSES) == CONTRACT_BATCH_STATUSES
    assert set(RESPONSE_TABLE) == CONTRACT_RESPONSE_STATUSES
    assert set(BATCH_TABLE) == CONTRACT_BATCH_STATUSES


@pytest.mark.parametrize("provider_status", RESPONSE_STATUSES)
@pytest.mark.parametrize("review_wanted", [False, True])
def test_response_mapping(provider_status: str, review_wanted: bool) -> None:
    expected = RESPONSE_TABLE[provider_status][review_wanted]
    assert product_status_for_response(provider_status, review_wanted=review_wanted) is expected


@pytest.mark.parametrize("provider_status", BATCH_STATUSES)
@pytest.mark.parametrize("review_wanted", [False, True])
def test_batch_mapping(provider_status: str, review_wanted: bool) -> None:
    expected = BATCH_TABLE[provider_status][review_wanted]
    assert product_status_for_batch(provider_status, review_wanted=review_wanted) is expected


def test_completed_batch_with_failing_records_is_failed() -> None:
    status = product_status_for_batch("completed", review_wanted=True, unresolved_failed_records=3)
    assert status is ProductStatus.FAILED


def test_expired_batch_with_resubmission_left_keeps_running() -> None:
    assert (
        product_status_for_batch("expired", review_wanted=False, resubmission_left=True)
        is ProductStatus.RUNNING
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda: product_status_for_response("paused", review_wanted=False),
        lambda: product_status_for_batch("paused", review_wanted=False),
        lambda: is_terminal_response_status("paused"),
        lambda: is_terminal_batch_status("paused"),
        lambda: response_reason("paused"),
    ],
)
def test_unknown_provider_status_names_the_value(call: object) -> None:
    assert callable(call)
    with pytest.raises(UnknownProviderStatus, match="'paused'") as caught:
        call()
    assert caught.value.value == "paused"
    assert "newer" in str(caught.value)


@pytest.mark.parametrize("provider_status", RESPONSE_STATUSES)
def test_terminal_response_statuses(provider_status: str) -> None:
    expected = provider_status not in ("queued", "in_progress")
    assert is_terminal_response_status(provider_status) is expected


@pytest.mark.parametrize("provider_status", BATCH_STATUSES)
def test_terminal_batch_statuses(provider_status: str) -> None:
    expected = provider_status in ("failed", "completed", "expired", "cancelled")
    assert is_terminal_batch_status(provider_status) is expected


@pytest.mark.parametrize("status", list(ProductStatus))
def test_terminal_product_statuses(status: ProductStatus) -> None:
    expected = status not in (
        ProductStatus.QUEUED,
        ProductStatus.RUNNING,
        ProductStatus.NEEDS_REVIEW,
    )
    assert is_terminal(status) is expected


def test_reason_for_failed_names_code_and_message() -> None:
    reason = response_reason("failed", error_code="server_error", error_message="boom")
    assert reason == "the provider failed the response (server_error): boom"


def test_reason_for_failed_without_error() -> None:
    reason = response_reason("failed")
    assert reason is not None
    assert "unknown_error" in reason


@pytest.mark.parametrize(
    ("incomplete_reason", "fragment"),
    [
        ("max_output_tokens", "raise max_output_tokens"),
        ("content_filter", "content filter"),
        ("something_new", "(something_new)"),
        (None, "no reason"),
    ],
)
def test_reason_for_incomplete(incomplete_reason: str | None, fragment: str) -> None:
    reason = response_reason("incomplete", incomplete_reason=incomplete_reason)
    assert reason is not None
    assert fragment in reason


def test_reason_for_cancelled_and_none_for_healthy_statuses() -> None:
    assert response_reason("cancelled") == "the response was cancelled at the provider"
    for healthy in ("queued", "in_progress", "completed"):
        assert response_reason(healthy) is None


ALLOWED = {
    ProductStatus.QUEUED: ["cancel"],
    ProductStatus.RUNNING: ["cancel"],
    ProductStatus.NEEDS_REVIEW: ["approve", "reject", "cancel", "escalate"],
    ProductStatus.COMPLETED: ["archive"],
    ProductStatus.FAILED: ["retry", "archive"],
    ProductStatus.CANCELED: ["archive"],
    ProductStatus.EXPIRED: ["retry", "archive"],
}


@pytest.mark.parametrize("status", list(ProductStatus))
def test_allowed_actions_per_status(status: ProductStatus) -> None:
    assert allowed_actions(JobFacts(status=status)) == ALLOWED[status]


@pytest.mark.parametrize("status", list(ProductStatus))
def test_an_ended_job_takes_archive_only_and_only_once(status: ProductStatus) -> None:
    ended = JobFacts(status=status, open=False)
    assert allowed_actions(ended) == (["archive"] if is_terminal(status) else [])
    assert allowed_actions(ended.model_copy(update={"archived": True})) == []


def test_no_cancel_after_the_side_effect_started() -> None:
    facts = JobFacts(status=ProductStatus.RUNNING, side_effect_started=True)
    assert Action.CANCEL not in allowed_actions(facts)
    assert refusal_reason(Action.CANCEL, facts) == (
        "the side effect has already started; it cannot be cancelled"
    )


def test_escalate_only_once() -> None:
    facts = JobFacts(status=ProductStatus.NEEDS_REVIEW, escalated=True)
    assert allowed_actions(facts) == ["approve", "reject", "cancel"]
    assert refusal_reason(Action.ESCALATE, facts) == "the job is already escalated"


def test_no_review_action_once_a_verdict_is_given() -> None:
    facts = JobFacts(status=ProductStatus.NEEDS_REVIEW, decision="approved")
    assert allowed_actions(facts) == ["cancel"]
    assert refusal_reason(Action.REJECT, facts) == "the job was already approved"


def test_no_retry_when_nothing_a_retry_changes() -> None:
    facts = JobFacts(status=ProductStatus.FAILED, retry_possible=False)
    assert allowed_actions(facts) == ["archive"]
    assert "fix the input" in (refusal_reason(Action.RETRY, facts) or "")


def test_archived_jobs_allow_nothing() -> None:
    for status in (ProductStatus.COMPLETED, ProductStatus.FAILED, ProductStatus.EXPIRED):
        assert allowed_actions(JobFacts(status=status, archived=True)) == []


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("status", list(ProductStatus))
def test_every_refusal_has_a_reason_and_every_offer_none(
    action: Action, status: ProductStatus
) -> None:
    for facts in (JobFacts(status=status), JobFacts(status=status, open=False)):
        offered = action.value in allowed_actions(facts)
        assert (refusal_reason(action, facts) is None) == offered


@pytest.mark.parametrize(
    ("succeeded", "unresolved", "expired_only", "ending"),
    [
        (10, 0, False, ProductStatus.COMPLETED),
        (0, 0, False, ProductStatus.FAILED),  # e.g. the provider failed the batch as a whole
        (5, 3, False, ProductStatus.FAILED),
        (5, 3, True, ProductStatus.EXPIRED),
        (0, 3, True, ProductStatus.EXPIRED),
    ],
)
def test_how_a_batch_job_ends(
    succeeded: int, unresolved: int, expired_only: bool, ending: ProductStatus
) -> None:
    assert (
        batch_job_ending(succeeded=succeeded, unresolved=unresolved, expired_only=expired_only)
        is ending
    )
