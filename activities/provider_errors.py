"""How a provider failure becomes a Temporal retry decision.

The OpenAI client runs with `max_retries=0`, so this is the only retry logic: 429 waits as
long as the provider's Retry-After says; 408, 409, 5xx, timeouts and dropped connections are
retried by the activity's retry policy; any other 4xx will not get better by retrying, so it
fails the activity for good with the provider's own message.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Final

import openai
from temporalio.exceptions import ApplicationError

from laneway.background import PROVIDER_REJECTED

RATE_LIMITED: Final = "ProviderRateLimited"
REJECTED: Final = PROVIDER_REJECTED
UNAVAILABLE: Final = "ProviderUnavailable"
_RETRYABLE_CLIENT_STATUSES: Final = frozenset({408, 409, 429})


def retry_after(error: openai.APIStatusError) -> timedelta | None:
    """The wait a 429 asks for: `retry-after-ms`, `retry-after` seconds, or an HTTP date."""
    response_headers = error.response.headers
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = response_headers.get(name)
        if value is None:
            continue
        try:
            return timedelta(seconds=max(0.0, float(value) / divisor))
        except ValueError:
            pass
    parsed = email.utils.parsedate_tz(response_headers.get("retry-after") or "")
    if parsed is None:
        return None
    return timedelta(seconds=max(0.0, email.utils.mktime_tz(parsed) - time.time()))


def provider_message(error: openai.APIStatusError) -> str:
    """The provider's own words, e.g. 'Incorrect API key provided' (status code first)."""
    body = error.body
    if isinstance(body, dict):
        detail = body.get("error", body)
        if isinstance(detail, dict) and detail.get("message"):
            return f"{error.status_code}: {detail['message']}"
    return f"{error.status_code}: {error.message}"


def classify(error: openai.APIError) -> ApplicationError:
    """The ApplicationError to raise instead of `error`, carrying the retry decision."""
    if isinstance(error, openai.APIStatusError):
        message = provider_message(error)
        if error.status_code == 429:
            return ApplicationError(
                f"provider rate limit: {message}",
                type=RATE_LIMITED,
                next_retry_delay=retry_after(error),
            )
        if 400 <= error.status_code < 500 and error.status_code not in _RETRYABLE_CLIENT_STATUSES:
            return ApplicationError(message, type=REJECTED, non_retryable=True)
        return ApplicationError(f"provider error {message}", type=UNAVAILABLE)
    # Connection errors and timeouts: nothing was decided by the provider; try again.
    return ApplicationError(f"provider unreachable: {error}", type=UNAVAILABLE)


@contextmanager
def provider_call() -> Iterator[None]:
    """Wrap one provider call so its failure carries Laneway's retry decision."""
    try:
        yield
    except openai.APIError as error:
        raise classify(error) from error
