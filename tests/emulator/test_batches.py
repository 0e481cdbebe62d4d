"""Batches through their lifecycle, driven by advance_clock on an otherwise frozen clock."""

from __future__ import annotations

import math
from typing import Any

import openai
import pytest
from openai import OpenAI

from emulator.server import EmulatorServer
from tests.emulator.conftest import StartEmulator, sdk
from tests.emulator.helpers import (
    CANCELLING,
    DAY,
    FINALIZING,
    PER_REQUEST,
    VALIDATING,
    by_custom_id,
    chat_line,
    error_of,
    jsonl,
    read_jsonl,
    start_batch,
    text_for,
    upload,
)

EXPECTED_SENTIMENT = ("positive", "negative", "neutral")


def test_full_lifecycle_with_counts_and_results(frozen: EmulatorServer, client: OpenAI) -> None:
    control = frozen.control
    batch = start_batch(client, [chat_line(i) for i in range(100)], metadata={"job": "j-1"})
    assert batch.id.startswith("batch_") and batch.status == "validating"
    assert batch.expires_at == batch.created_at + DAY
    assert batch.request_counts is not None and batch.request_counts.total == 0
    assert batch.metadata == {"job": "j-1"}

    control.advance_clock(VALIDATING)
    batch = client.batches.retrieve(batch.id)
    assert batch.status == "in_progress" and batch.model == "gpt-4o-mini"
    assert batch.in_progress_at == batch.created_at + VALIDATING
    assert batch.request_counts is not None and batch.request_counts.total == 100

    now = control.advance_clock(40 * PER_REQUEST)
    batch = client.batches.retrieve(batch.id)
    assert batch.request_counts is not None and batch.in_progress_at is not None
    due = math.floor((now - batch.in_progress_at) / PER_REQUEST)
    assert 0 < batch.request_counts.completed < 100
    assert abs(batch.request_counts.completed - due) <= 1
    assert batch.usage is None and batch.output_file_id is None

    control.advance_clock(60 * PER_REQUEST)
    batch = client.batches.retrieve(batch.id)
    assert batch.status == "finalizing"
    assert batch.in_progress_at is not None and batch.finalizing_at is not None
    assert batch.finalizing_at == batch.in_progress_at + 100 * PER_REQUEST
    assert batch.request_counts is not None and batch.request_counts.completed == 100
    assert batch.output_file_id is None

    finalizing_at = batch.finalizing_at
    control.advance_clock(FINALIZING)
    batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed"
    assert batch.completed_at == finalizing_at + FINALIZING
    assert batch.error_file_id is None and batch.errors is None
    _assert_results_belong_to_their_requests(client, batch.output_file_id, 100)
    assert batch.usage is not None and batch.usage.total_tokens > 0


def _assert_results_belong_to_their_requests(client: OpenAI, file_id: str | None, n: int) -> None:
    rows = read_jsonl(client, file_id)
    assert [row["custom_id"] for row in rows] != [f"req-{i}" for i in range(n)]  # shuffled
    results = by_custom_id(rows)
    assert set(results) == {f"req-{i}" for i in range(n)}
    for i in range(n):
        row = results[f"req-{i}"]
        assert row["id"].startswith("batch_req_") and row["error"] is None
        assert row["response"]["status_code"] == 200
        assert row["response"]["request_id"].startswith("req_")
        content = row["response"]["body"]["choices"][0]["message"]["content"]
        assert f"record-{i} " in content
        assert f"Sentiment: {EXPECTED_SENTIMENT[i % 3]}." in content


def test_usage_is_the_sum_of_the_lines(frozen: EmulatorServer, client: OpenAI) -> None:
    batch = start_batch(client, [chat_line(i) for i in range(30)])
    frozen.control.advance_clock(DAY / 2)
    batch = client.batches.retrieve(batch.id)
    bodies = [row["response"]["body"] for row in read_jsonl(client, batch.output_file_id)]
    assert batch.usage is not None
    assert batch.usage.input_tokens == sum(b["usage"]["prompt_tokens"] for b in bodies)
    assert batch.usage.output_tokens == sum(b["usage"]["completion_tokens"] for b in bodies)
    assert batch.usage.output_tokens_details.reasoning_tokens == 0


BAD_LINES: dict[str, tuple[Any, str, str | None]] = {
    "duplicate custom_id": (chat_line(0), "duplicate_custom_id", "custom_id"),
    "bad json": ('{"custom_id": "req-9", "method": ', "invalid_json_line", None),
    "wrong url": (chat_line(9, url="/v1/embeddings"), "invalid_url", "url"),
    "mixed models": (chat_line(9, model="gpt-4o"), "mismatched_model", "body.model"),
    "bad method": (chat_line(9, method="GET"), "invalid_method", "method"),
    "no custom_id": (
        {k: v for k, v in chat_line(9).items() if k != "custom_id"},
        "missing_required_parameter",
        "custom_id",
    ),
}


@pytest.mark.parametrize("case", list(BAD_LINES))
def test_validation_failure_names_the_line(
    frozen: EmulatorServer, client: OpenAI, case: str
) -> None:
    bad, code, param = BAD_LINES[case]
    batch = start_batch(client, [chat_line(0), chat_line(1), bad, chat_line(3)])
    frozen.control.advance_clock(VALIDATING)

    batch = client.batches.retrieve(batch.id)
    assert batch.status == "failed" and batch.failed_at == batch.created_at + VALIDATING
    assert batch.errors is not None and batch.errors.data is not None
    assert [(e.code, e.line, e.param) for e in batch.errors.data] == [(code, 3, param)]
    assert batch.in_progress_at is None and batch.output_file_id is None


def test_every_bad_line_is_reported(frozen: EmulatorServer, client: OpenAI) -> None:
    lines: list[dict[str, Any] | str] = [
        chat_line(0),
        chat_line(0),
        "{nope",
        chat_line(3, url="/v1/responses"),
    ]
    batch = start_batch(client, [*lines, chat_line(4, model="gpt-4o"), chat_line(5, method="PUT")])
    frozen.control.advance_clock(VALIDATING)
    batch = client.batches.retrieve(batch.id)
    assert batch.errors is not None and batch.errors.data is not None
    assert [(e.code, e.line) for e in batch.errors.data] == [
        ("duplicate_custom_id", 2),
        ("invalid_json_line", 3),
        ("invalid_url", 4),
        ("mismatched_model", 5),
        ("invalid_method", 6),
    ]


def test_too_many_requests_fails_validation(start_emulator: StartEmulator) -> None:
    server = start_emulator(max_requests_per_batch=3)
    client = sdk(server)
    batch = start_batch(client, [chat_line(i) for i in range(4)])
    server.control.advance_clock(VALIDATING)
    batch = client.batches.retrieve(batch.id)
    assert batch.status == "failed" and batch.errors is not None and batch.errors.data
    assert batch.errors.data[0].code == "too_many_requests"


CREATE_ERRORS: dict[str, tuple[dict[str, Any], str]] = {
    "48h window": ({"completion_window": "48h"}, "completion_window"),
    "unknown endpoint": ({"endpoint": "/v1/unknown"}, "endpoint"),
    "missing file": ({"input_file_id": "file-missing"}, "input_file_id"),
    "too much metadata": ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
}


@pytest.mark.parametrize("case", list(CREATE_ERRORS))
def test_create_rejects_with_400(client: OpenAI, case: str) -> None:
    override, param = CREATE_ERRORS[case]
    file = upload(client, jsonl([chat_line(0)]))
    params: dict[str, Any] = {
        "input_file_id": file.id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        **override,
    }
    with pytest.raises(openai.BadRequestError) as err:
        client.batches.create(**params)
    assert error_of(err.value)["param"] == param
    assert error_of(err.value)["type"] == "invalid_request_error"
    assert client.batches.list().data == []


def test_cancel_keeps_partial_output(frozen: EmulatorServer, client: OpenAI) -> None:
    control = frozen.control
    batch = start_batch(client, [chat_line(i) for i in range(100)])
    control.advance_clock(VALIDATING + 30 * PER_REQUEST)

    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    assert cancelling.request_counts is not None
    done = cancelling.request_counts.completed
    assert 0 < done < 100

    control.advance_clock(CANCELLING / 2)
    still = client.batches.retrieve(batch.id)
    assert still.status == "cancelling" and still.request_counts == cancelling.request_counts

    control.advance_clock(CANCELLING / 2)
    cancelled = client.batches.retrieve(batch.id)
    assert cancelled.status == "cancelled"
    assert cancelled.cancelled_at == cancelling.cancelling_at + CANCELLING
    rows = read_jsonl(client, cancelled.output_file_id)
    assert len(rows) == done and cancelled.error_file_id is None
    assert client.batches.cancel(batch.id).status == "cancelled"  # idempotent


def test_cancelling_a_finished_batch_is_a_400(frozen: EmulatorServer, client: OpenAI) -> None:
    batch = start_batch(client, [chat_line(0)])
    frozen.control.advance_clock(DAY / 2)
    with pytest.raises(openai.BadRequestError):
        client.batches.cancel(batch.id)


def test_expiry_keeps_partial_output_and_lists_the_rest(start_emulator: StartEmulator) -> None:
    server = start_emulator(batch_seconds_per_request=2000.0)  # 100 requests need 2.3 days
    client = sdk(server)
    batch = start_batch(client, [chat_line(i) for i in range(100)])
    server.control.advance_clock(DAY + 60)

    batch = client.batches.retrieve(batch.id)
    assert batch.status == "expired" and batch.expired_at == batch.expires_at
    counts = batch.request_counts
    assert counts is not None and 0 < counts.completed < 100
    assert counts.completed + counts.failed == 100
    done = by_custom_id(read_jsonl(client, batch.output_file_id))
    expired = by_custom_id(read_jsonl(client, batch.error_file_id))
    assert len(done) == counts.completed and len(expired) == counts.failed
    assert set(done) | set(expired) == {f"req-{i}" for i in range(100)}
    for row in expired.values():
        assert row["response"] is None and row["id"].startswith("batch_req_")
        assert row["error"]["code"] == "batch_expired" and row["error"]["message"]


def test_list_is_newest_first_with_cursor(client: OpenAI) -> None:
    ids = [start_batch(client, [chat_line(i)]).id for i in range(3)]
    page = client.batches.list(limit=2)
    assert [b.id for b in page.data] == [ids[2], ids[1]] and page.has_more
    raw = client.batches.with_raw_response.list(limit=2).http_response.json()
    assert (raw["object"], raw["first_id"], raw["last_id"]) == ("list", ids[2], ids[1])
    rest = client.batches.list(limit=2, after=ids[1])
    assert [b.id for b in rest.data] == [ids[0]] and not rest.has_more
    assert [b.id for b in client.batches.list()] == ids[::-1]


def test_unknown_batch_is_a_404(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.batches.retrieve("batch_nope")
    assert error_of(err.value)["type"] == "invalid_request_error"


def _line(custom_id: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def test_each_endpoint_answers_as_its_synchronous_twin(
    frozen: EmulatorServer, client: OpenAI
) -> None:
    chat: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": text_for(0)}],
    }
    resp: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "input": text_for(1),
        "instructions": "Classify.",
    }
    emb: dict[str, Any] = {
        "model": "text-embedding-3-small",
        "input": [text_for(2), "b"],
        "dimensions": 8,
    }
    batches = {
        "chat": start_batch(client, [_line("c", "/v1/chat/completions", chat)]),
        "resp": start_batch(client, [_line("r", "/v1/responses", resp)], "/v1/responses"),
        "emb": start_batch(client, [_line("e", "/v1/embeddings", emb)], "/v1/embeddings"),
    }
    frozen.control.advance_clock(DAY / 2)
    body = {
        key: read_jsonl(client, client.batches.retrieve(b.id).output_file_id)[0]["response"]["body"]
        for key, b in batches.items()
    }

    sync_chat = client.chat.completions.create(**chat)
    assert body["chat"]["object"] == "chat.completion"
    assert body["chat"]["choices"][0]["message"]["content"] == sync_chat.choices[0].message.content
    assert body["chat"]["usage"] == sync_chat.usage.model_dump(exclude_none=True)

    sync_resp = client.responses.create(**resp)
    assert body["resp"]["object"] == "response" and body["resp"]["status"] == "completed"
    assert body["resp"]["output"][0]["content"][0]["text"] == sync_resp.output_text
    assert body["resp"]["usage"]["total_tokens"] == sync_resp.usage.total_tokens

    sync_emb = client.embeddings.create(**emb)
    assert [d["index"] for d in body["emb"]["data"]] == [0, 1]
    for line_item, sync_item in zip(body["emb"]["data"], sync_emb.data, strict=True):
        assert line_item["embedding"] == pytest.approx(sync_item.embedding, abs=1e-6)


def test_a_request_the_endpoint_rejects_lands_in_the_error_file(
    frozen: EmulatorServer, client: OpenAI
) -> None:
    bad = _line("bad", "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": []})
    batch = start_batch(client, [chat_line(0), bad])
    frozen.control.advance_clock(DAY / 2)
    batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (1, 1)
    (row,) = read_jsonl(client, batch.error_file_id)
    assert row["custom_id"] == "bad" and row["error"] is None
    assert row["response"]["status_code"] == 400
    error = row["response"]["body"]["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["param"] == "messages"
    assert row["id"].startswith("batch_req_")
