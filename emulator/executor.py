"""Run one request body against an endpoint: what the synchronous route answers, as data.

Batch execution and the synchronous routes share these functions, so a batch line's body is
exactly what the synchronous endpoint would return for the same request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emulator.chat import chat_completion
from emulator.errors import APIError
from emulator.responses_model import ResponseRecord, parse_request
from emulator.synth import embeddings, ensure_object


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: dict[str, Any]
    input_tokens: int = 0
    output_tokens: int = 0


def synchronous_response(body: dict[str, Any], now: int) -> ResponseRecord:
    """A Response created and finished at once (background=false)."""
    record = ResponseRecord(request=parse_request(body), created_at=now, status="in_progress")
    record.finish(now)
    return record


def execute(endpoint: str, body: Any, now: int) -> Outcome:
    try:
        return _dispatch(endpoint, ensure_object(body), now)
    except APIError as exc:
        return Outcome(exc.status, exc.body())


def _dispatch(endpoint: str, body: dict[str, Any], now: int) -> Outcome:
    if endpoint == "/v1/chat/completions":
        result = chat_completion(body, now)
        usage = result["usage"]
        return Outcome(200, result, usage["prompt_tokens"], usage["completion_tokens"])
    if endpoint == "/v1/responses":
        rendered = synchronous_response({**body, "background": False}, now).render()
        usage = rendered["usage"] or {}
        return Outcome(200, rendered, usage.get("input_tokens", 0), usage.get("output_tokens", 0))
    if endpoint == "/v1/embeddings":
        result = embeddings(body)
        return Outcome(200, result, result["usage"]["prompt_tokens"], 0)
    raise APIError(404, f"Invalid URL (POST {endpoint})", code="unknown_url")
