"""Provider failures map to Temporal retry decisions (one function, so plain fakes are fine)."""

from __future__ import annotations

import email.utils
import time
from datetime import timedelta
from typing import Any

import httpx2
import openai
import pytest

from activities.provider_errors import (
    RATE_LIMITED,
    REJECTED,
    UNAVAILABLE,
    classify,
    provider_call,
)

REQUEST = httpx2.Request("POST", "http://127.0.0.1/v1/responses")


def status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    body: dict[str, Any] = {
        "error": {"message": f"the provider says {status}", "type": "x", "param": None}
    }
    response = httpx2.Response(status, headers=headers or {}, json=body, request=REQUEST)
    client = openai.OpenAI(api_key="k", base_url="http://127.0.0.1/v1", max_retries=0)
    return client._make_status_error_from_response(response)


def test_429_honours_retry_after_seconds() -> None:
    decision = classify(status_error(429, {"retry-after": "7"}))
    assert decision.type == RATE_LIMITED
    assert not decision.non_retryable
    assert decision.next_retry_delay == timedelta(seconds=7)


def test_429_prefers_retry_after_ms() -> None:
    decision = classify(status_error(429, {"retry-after-ms": "1500", "retry-after": "9"}))
    assert decision.next_retry_delay == timedelta(seconds=1.5)


def test_429_accepts_an_http_date() -> None:
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    decision = classify(status_error(429, {"retry-after": later}))
    assert decision.next_retry_delay is not None
    assert timedelta(seconds=25) < decision.next_retry_delay <= timedelta(seconds=31)


def test_429_without_header_leaves_the_retry_policy_in_charge() -> None:
    assert classify(status_error(429)).next_retry_delay is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_fail_for_good_with_the_providers_message(status: int) -> None:
    decision = classify(status_error(status))
    assert decision.type == REJECTED
    assert decision.non_retryable
    assert decision.message == f"{status}: the provider says {status}"


@pytest.mark.parametrize("status", [408, 409, 500, 502, 503])
def test_transient_statuses_are_retried(status: int) -> None:
    decision = classify(status_error(status))
    assert decision.type == UNAVAILABLE
    assert not decision.non_retryable


def test_dropped_connections_and_timeouts_are_retried() -> None:
    for error in (
        openai.APIConnectionError(request=REQUEST),
        openai.APITimeoutError(request=REQUEST),
    ):
        decision = classify(error)
        assert decision.type == UNAVAILABLE
        assert not decision.non_retryable


def test_provider_call_translates_and_chains() -> None:
    original = status_error(401)
    with pytest.raises(Exception) as raised, provider_call():
        raise original
    assert raised.value.__cause__ is original
    assert getattr(raised.value, "non_retryable", False)
