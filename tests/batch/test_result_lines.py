"""Provider output and error lines (contract section 1) as the ledger keeps them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from activities.batches import LineTally, result_of_line, results_in_file, usage_of_body
from laneway.batch import RecordState
from laneway.jobs import ArtifactRef, Usage
from store.artifacts import ArtifactStore
from store.ledger.batch_records import RecordResult

OUTPUT = ArtifactRef(uri="artifact://" + "c" * 64, sha256="c" * 64, size_bytes=1000)

RESPONSES_BODY: dict[str, Any] = {
    "id": "resp_1",
    "object": "response",
    "status": "completed",
    "model": "gpt-4o-mini",
    "output": [{"type": "message", "content": [{"type": "output_text", "text": "billing"}]}],
    "usage": {
        "input_tokens": 120,
        "input_tokens_details": {"cached_tokens": 20},
        "output_tokens": 30,
        "output_tokens_details": {"reasoning_tokens": 12},
        "total_tokens": 150,
    },
}
CHAT_BODY: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "billing"}}],
    "usage": {
        "prompt_tokens": 80,
        "completion_tokens": 9,
        "total_tokens": 89,
        "prompt_tokens_details": {"cached_tokens": 64},
        "completion_tokens_details": {"reasoning_tokens": 4},
    },
}
EMBEDDINGS_BODY: dict[str, Any] = {
    "object": "list",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 7, "total_tokens": 7},
}


def output_line(custom_id: str, status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": "req_abc", "body": body},
        "error": None,
    }


def http_error(status: int, code: str | None, kind: str, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def expired_line(custom_id: str) -> dict[str, Any]:
    message = "This request could not be executed before the completion window expired."
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": None,
        "error": {"code": "batch_expired", "message": message},
    }


# ---- one line ---------------------------------------------------------------------------------


def test_a_200_responses_line_succeeds_with_its_usage_and_byte_range() -> None:
    result = result_of_line(output_line("req-1", 200, RESPONSES_BODY), OUTPUT, 512, 300)
    assert result == RecordResult(
        custom_id="req-1",
        state=RecordState.SUCCEEDED,
        retryable=False,
        error_code=None,
        error_message=None,
        output_uri=OUTPUT.uri,
        output_offset=512,
        output_length=300,
        usage=Usage(
            input_tokens=120, cached_input_tokens=20, output_tokens=30, reasoning_tokens=12
        ),
    )


def test_chat_usage_is_read_from_prompt_and_completion_tokens() -> None:
    result = result_of_line(output_line("c", 200, CHAT_BODY), OUTPUT, 0, 10)
    assert result.state is RecordState.SUCCEEDED
    assert result.usage == Usage(
        input_tokens=80, cached_input_tokens=64, output_tokens=9, reasoning_tokens=4
    )


def test_embeddings_usage_has_input_tokens_only() -> None:
    result = result_of_line(output_line("e", 200, EMBEDDINGS_BODY), OUTPUT, 0, 10)
    assert result.state is RecordState.SUCCEEDED
    assert result.usage == Usage(input_tokens=7)


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (None, Usage()),
        ("not an object", Usage()),
        ({"input_tokens": None, "output_tokens": None}, Usage()),
        (
            {"input_tokens": 5, "input_tokens_details": None, "output_tokens": 2},
            Usage(input_tokens=5, output_tokens=2),
        ),
        (
            {"prompt_tokens": 3, "prompt_tokens_details": {"cached_tokens": 50}},
            Usage(input_tokens=3, cached_input_tokens=3),
        ),
    ],
)
def test_odd_usage_never_breaks_a_result(usage: object, expected: Usage) -> None:
    assert usage_of_body({"usage": usage}) == expected


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [(429, "rate_limit_exceeded", "requests"), (500, "server_error", "server_error")],
)
def test_a_429_or_500_in_the_error_file_is_a_retryable_failure(
    status: int, code: str, kind: str
) -> None:
    line = output_line("req-9", status, http_error(status, code, kind, "please try again"))
    result = result_of_line(line, OUTPUT, 40, 200)
    assert result == RecordResult(
        custom_id="req-9",
        state=RecordState.FAILED,
        retryable=True,
        error_code=code,
        error_message=f"{status}: please try again",
    )


@pytest.mark.parametrize("status", [408, 409, 502, 503])
def test_other_transient_statuses_are_retryable(status: int) -> None:
    line = output_line("r", status, http_error(status, None, "server_error", "x"))
    assert result_of_line(line, OUTPUT, 0, 1).retryable


def test_a_400_is_a_permanent_failure_named_by_the_bodys_error_code() -> None:
    body = http_error(400, "context_length_exceeded", "invalid_request_error", "too long")
    result = result_of_line(output_line("req-2", 400, body), OUTPUT, 0, 99)
    assert (result.state, result.retryable) == (RecordState.FAILED, False)
    assert (result.error_code, result.error_message) == ("context_length_exceeded", "400: too long")
    assert result.output_uri is None and result.usage == Usage()


def test_a_failure_without_a_code_falls_back_to_its_type_then_status() -> None:
    typed = result_of_line(
        output_line("a", 404, http_error(404, None, "not_found_error", "no model")), OUTPUT, 0, 1
    )
    assert (typed.error_code, typed.retryable) == ("not_found_error", False)
    bare = result_of_line(output_line("b", 422, {"detail": "?"}), OUTPUT, 0, 1)
    assert (bare.error_code, bare.error_message, bare.retryable) == ("http_422", "422:", False)


def test_a_batch_expired_error_line_is_retryable() -> None:
    result = result_of_line(expired_line("req-5"), OUTPUT, 0, 150)
    assert result.state is RecordState.FAILED and result.retryable
    assert result.error_code == "batch_expired"
    assert result.error_message.startswith("This request could not be executed")  # type: ignore[union-attr]


def test_a_non_http_error_of_another_code_is_not_retryable() -> None:
    line = {"custom_id": "x", "response": None, "error": {"code": "invalid_prompt", "message": ""}}
    result = result_of_line(line, OUTPUT, 0, 1)
    assert (result.error_code, result.retryable) == ("invalid_prompt", False)


def test_long_codes_and_messages_are_cut() -> None:
    body = http_error(400, "c" * 500, "invalid_request_error", "m" * 5000)
    result = result_of_line(output_line("x", 400, body), OUTPUT, 0, 1)
    assert len(result.error_code or "") == 128 and len(result.error_message or "") == 1000


def test_a_numeric_custom_id_is_read_as_text() -> None:
    line = output_line("ignored", 200, RESPONSES_BODY) | {"custom_id": 17}
    assert result_of_line(line, OUTPUT, 0, 1).custom_id == "17"


# ---- a whole file ---------------------------------------------------------------------------


def test_results_in_file_counts_unreadable_lines_and_points_at_each_line(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    rows = [
        json.dumps(output_line("req-0", 200, RESPONSES_BODY)),
        "",  # a blank line: skipped, not counted
        "{not json",
        json.dumps(output_line("req-é", 200, CHAT_BODY), ensure_ascii=False),  # multi-byte
        json.dumps({"response": {"status_code": 200}}),  # no custom_id
        "[1, 2]",
        json.dumps(output_line("req-2", "teapot", {})),  # type: ignore[arg-type]
        json.dumps(expired_line("req-3")),
        json.dumps(output_line("req-4", 200, EMBEDDINGS_BODY)),  # last line, CRLF ending
    ]
    data = ("\n".join(rows[:-1]) + "\n" + rows[-1] + "\r\n").encode()
    ref = store.put_bytes(data, "application/jsonl")
    tally = LineTally()

    results = list(results_in_file(store, ref, tally))

    assert [r.custom_id for r in results] == ["req-0", "req-é", "req-3", "req-4"]
    assert (tally.lines, tally.unreadable) == (8, 4)
    assert [r.state for r in results] == [
        RecordState.SUCCEEDED,
        RecordState.SUCCEEDED,
        RecordState.FAILED,
        RecordState.SUCCEEDED,
    ]
    for result in (r for r in results if r.state is RecordState.SUCCEEDED):
        assert result.output_uri == ref.uri and result.output_offset is not None
        span = data[result.output_offset : result.output_offset + (result.output_length or 0)]
        assert json.loads(span)["custom_id"] == result.custom_id
        assert not span.endswith((b"\n", b"\r")), "the length excludes the line ending"
    assert results[1].output_offset == data.index('{"id": "batch_req_req-é"'.encode())
