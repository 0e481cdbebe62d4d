"""Everything the emulator answers validates against OpenAI's spec and parses in the SDK."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import httpx2
import openai
import pytest
from openai.types import Batch, CreateEmbeddingResponse, FileObject
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from emulator.server import EmulatorServer
from tests.conformance.recorder import SpecRecorder
from tests.conformance.spec import (
    validate_batch_input_line,
    validate_batch_output_line,
    validate_component,
)

MODEL = "gpt-4o-mini"
BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    "/v1/chat/completions": (
        "CreateChatCompletionResponse",
        {"model": MODEL, "messages": [{"role": "user", "content": "The demo was great"}]},
    ),
    "/v1/responses": ("Response", {"model": MODEL, "input": "The outage was terrible"}),
    "/v1/embeddings": (
        "CreateEmbeddingResponse",
        {"model": "text-embedding-3-small", "input": "lanes", "dimensions": 8},
    ),
}


def jsonl(lines: list[dict[str, Any]]) -> io.BytesIO:
    return io.BytesIO("".join(json.dumps(line) + "\n" for line in lines).encode())


def wait_until_done(client: openai.OpenAI, batch_id: str) -> Batch:
    deadline = time.monotonic() + 30
    batch = client.batches.retrieve(batch_id)
    while batch.status not in ("completed", "failed", "expired", "cancelled"):
        assert time.monotonic() < deadline, f"batch stuck in {batch.status}"
        time.sleep(0.05)
        batch = client.batches.retrieve(batch_id)
    return batch


def assert_conforms(recorder: SpecRecorder) -> None:
    assert recorder.checked, "nothing was checked"
    assert recorder.violations == []


def test_files(spec_emulator: EmulatorServer, recorder: SpecRecorder) -> None:
    client = recorder.client(spec_emulator.base_url)
    line = {"custom_id": "a", "method": "POST", "url": "/v1/embeddings", "body": {}}
    created = client.files.create(file=("in.jsonl", jsonl([line])), purpose="batch")
    assert isinstance(created, FileObject) and created.purpose == "batch"
    assert client.files.retrieve(created.id).bytes == created.bytes
    assert created.id in [f.id for f in client.files.list(purpose="batch")]
    assert json.loads(client.files.content(created.id).read()) == line
    assert client.files.delete(created.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)
    assert_conforms(recorder)


@pytest.mark.parametrize("endpoint", sorted(BODIES))
def test_completed_batch_and_its_lines(
    spec_emulator: EmulatorServer, recorder: SpecRecorder, endpoint: str
) -> None:
    client = recorder.client(spec_emulator.base_url)
    schema, body = BODIES[endpoint]
    lines = [
        {"custom_id": f"r{i}", "method": "POST", "url": endpoint, "body": body} for i in range(20)
    ]
    for line in lines:
        validate_batch_input_line(line)
    spec_emulator.control.add_fault(
        {"kind": "batch_fail_fraction", "match": {"metadata_key": "lines"}, "fraction": 0.2}
    )
    upload = client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    batch = client.batches.create(
        input_file_id=upload.id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window="24h",
        metadata={"lines": "yes"},
    )
    done = wait_until_done(client, batch.id)
    spec_emulator.control.clear_faults()
    assert isinstance(done, Batch) and done.status == "completed"
    assert done.request_counts is not None and done.request_counts.total == 20
    assert done.output_file_id and done.error_file_id
    seen = set()
    for file_id in (done.output_file_id, done.error_file_id):
        for raw in client.files.content(file_id).text.splitlines():
            line = json.loads(raw)
            validate_batch_output_line(line)
            seen.add(line["custom_id"])
            if line["response"]["status_code"] == 200:
                validate_component(schema, line["response"]["body"])
            else:
                validate_component("ErrorResponse", line["response"]["body"])
    assert seen == {f"r{i}" for i in range(20)}
    assert batch.id in [b.id for b in client.batches.list(limit=100)]
    assert_conforms(recorder)


def test_failed_validation_and_cancel(
    spec_emulator: EmulatorServer, recorder: SpecRecorder
) -> None:
    client = recorder.client(spec_emulator.base_url)
    bad = [{"custom_id": "x", "method": "GET", "url": "/v1/embeddings", "body": {}}] * 2
    upload = client.files.create(file=("bad.jsonl", jsonl(bad)), purpose="batch")
    failed = wait_until_done(
        client,
        client.batches.create(
            input_file_id=upload.id, endpoint="/v1/embeddings", completion_window="24h"
        ).id,
    )
    assert failed.status == "failed" and failed.errors and failed.errors.data
    assert {error.line for error in failed.errors.data} >= {1, 2}
    _, body = BODIES["/v1/embeddings"]
    many = [
        {"custom_id": f"c{i}", "method": "POST", "url": "/v1/embeddings", "body": body}
        for i in range(2000)
    ]
    upload = client.files.create(file=("many.jsonl", jsonl(many)), purpose="batch")
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/embeddings", completion_window="24h"
    )
    cancelled = client.batches.cancel(batch.id)
    assert cancelled.status in ("cancelling", "cancelled")
    assert wait_until_done(client, batch.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.batches.create(
            input_file_id=upload.id,
            endpoint="/v1/embeddings",
            completion_window="48h",  # type: ignore[arg-type]
        )
    assert_conforms(recorder)


def test_background_responses(spec_emulator: EmulatorServer, recorder: SpecRecorder) -> None:
    client = recorder.client(spec_emulator.base_url)
    done = client.responses.create(model=MODEL, input="A great plan", background=True)
    assert isinstance(done, Response) and done.status in ("queued", "in_progress")
    deadline = time.monotonic() + 10
    while done.status in ("queued", "in_progress"):
        assert time.monotonic() < deadline
        done = client.responses.retrieve(done.id)
    assert done.status == "completed" and done.usage is not None and done.output_text
    spec_emulator.control.add_fault({"kind": "response_stick", "match": {"model": "gpt-4.1"}})
    stuck = client.responses.create(model="gpt-4.1", input="Slow", background=True)
    cancelled = client.responses.cancel(stuck.id)
    assert cancelled.status == "cancelled"
    assert client.responses.cancel(stuck.id).status == "cancelled"  # idempotent
    spec_emulator.control.clear_faults()
    sync = client.responses.create(model=MODEL, input="Now")
    assert sync.status == "completed"
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(sync.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_missing")
    assert_conforms(recorder)


def test_chat_embeddings_models_and_auth(
    spec_emulator: EmulatorServer, recorder: SpecRecorder
) -> None:
    client = recorder.client(spec_emulator.base_url)
    _, chat_body = BODIES["/v1/chat/completions"]
    chat = client.chat.completions.create(**chat_body)
    assert isinstance(chat, ChatCompletion) and chat.choices[0].message.content
    # The spec types `embedding` as numbers only; the SDK asks for base64 by default, which
    # the real API (and the emulator) answer with a string, so conformance uses floats.
    embedding = client.embeddings.create(
        model="text-embedding-3-small", input=["a", "b"], encoding_format="float"
    )
    assert isinstance(embedding, CreateEmbeddingResponse) and len(embedding.data) == 2
    default_encoding = openai.OpenAI(base_url=spec_emulator.base_url, api_key="k", max_retries=0)
    decoded = default_encoding.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert decoded.data[0].embedding == pytest.approx(embedding.data[0].embedding, rel=1e-6)
    assert [model.id for model in client.models.list()]
    with httpx2.Client(event_hooks={"response": [recorder]}) as anonymous:
        assert anonymous.get(f"{spec_emulator.base_url}/models").status_code == 401
    assert recorder.checked[-1].endswith("-> 401")
    assert_conforms(recorder)
