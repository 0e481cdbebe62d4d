"""The recorder notices a non-conforming server even though the SDK happily parses it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pytest

from tests.conformance.recorder import SpecRecorder

BATCH: dict[str, Any] = {
    "id": "batch_1",
    "object": "batch",
    "endpoint": "/v1/embeddings",
    "input_file_id": "file-1",
    "completion_window": "24h",
    "status": "runing",
    "created_at": 1_700_000_000,
}


def serve(status: int, body: bytes, headers: dict[str, str]) -> httpx2.MockTransport:
    return httpx2.MockTransport(lambda _: httpx2.Response(status, content=body, headers=headers))


def client_for(recorder: SpecRecorder, transport: httpx2.MockTransport) -> openai.OpenAI:
    hooks: dict[str, list[Callable[..., object]]] = {"response": [recorder]}
    http = httpx2.Client(transport=transport, event_hooks=hooks)
    return openai.OpenAI(base_url="http://test/v1", api_key="k", max_retries=0, http_client=http)


def test_a_misspelled_status_is_recorded() -> None:
    recorder = SpecRecorder()
    json_type = {"content-type": "application/json"}
    client = client_for(recorder, serve(200, json.dumps(BATCH).encode(), json_type))
    batch = client.batches.retrieve("batch_1")
    assert batch.model_dump()["status"] == "runing"  # the SDK does not check
    assert recorder.checked == ["GET /v1/batches/batch_1 -> 200"]
    assert "status: 'runing' is not one of" in recorder.violations[0]
    with pytest.raises(AssertionError, match="runing"):
        recorder.assert_clean()


@pytest.mark.parametrize(
    ("status", "body", "headers", "complaint"),
    [
        (200, b"{}", {"content-type": "text/plain"}, "content-type 'text/plain'"),
        (200, b"{oops", {"content-type": "application/json"}, "not JSON"),
        (429, b'{"error": {}}', {"content-type": "application/json"}, "Retry-After"),
        (404, b'{"detail": "x"}', {"content-type": "application/json"}, "'error' is a required"),
    ],
)
def test_broken_answers_are_recorded(
    status: int, body: bytes, headers: dict[str, str], complaint: str
) -> None:
    recorder = SpecRecorder()
    hooks: dict[str, list[Callable[..., object]]] = {"response": [recorder]}
    with httpx2.Client(transport=serve(status, body, headers), event_hooks=hooks) as http:
        http.get("http://test/v1/batches/batch_1")
    assert len(recorder.violations) == 1 and complaint in recorder.violations[0]
