"""Small shared pieces of the conformance tests: request bodies, JSONL, polling, lines."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import openai
from openai import BaseModel
from openai.types import Batch, CreateEmbeddingResponse
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from tests.conformance.sdk_models import parse_strictly
from tests.conformance.spec import (
    validate_batch_input_line,
    validate_batch_output_line,
    validate_component,
)

MODEL = "gpt-4o-mini"
TERMINAL_BATCH = ("completed", "failed", "expired", "cancelled")


# endpoint -> (spec schema of a 200 body, SDK type of that body, a request body)
ENDPOINTS: dict[str, tuple[str, type[BaseModel], dict[str, Any]]] = {
    "/v1/chat/completions": (
        "CreateChatCompletionResponse",
        ChatCompletion,
        {"model": MODEL, "messages": [{"role": "user", "content": "The demo was great"}]},
    ),
    "/v1/responses": ("Response", Response, {"model": MODEL, "input": "The outage was awful"}),
    "/v1/embeddings": (
        "CreateEmbeddingResponse",
        CreateEmbeddingResponse,
        {"model": "text-embedding-3-small", "input": "lanes", "dimensions": 8},
    ),
}


def request_lines(endpoint: str, count: int, prefix: str = "r") -> list[dict[str, Any]]:
    body = ENDPOINTS[endpoint][2]
    lines = [
        {"custom_id": f"{prefix}{i}", "method": "POST", "url": endpoint, "body": body}
        for i in range(count)
    ]
    for line in lines:
        validate_batch_input_line(line)  # what we send is spec-shaped too
    return lines


def jsonl(lines: list[dict[str, Any]]) -> io.BytesIO:
    return io.BytesIO("".join(json.dumps(line) + "\n" for line in lines).encode())


def upload(client: openai.OpenAI, lines: list[dict[str, Any]], name: str = "in.jsonl") -> str:
    return client.files.create(file=(name, jsonl(lines)), purpose="batch").id


def wait_for_batch(client: openai.OpenAI, batch_id: str, limit: float = 20.0) -> Batch:
    deadline = time.monotonic() + limit
    batch = client.batches.retrieve(batch_id)
    while batch.status not in TERMINAL_BATCH:
        assert time.monotonic() < deadline, f"batch {batch_id} stuck in {batch.status}"
        time.sleep(0.02)
        batch = client.batches.retrieve(batch_id)
    return batch


def result_lines(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    """The lines of an output or error file, each checked against the 2025-04 line schema."""
    if file_id is None:
        return []
    lines = [json.loads(raw) for raw in client.files.content(file_id).text.splitlines()]
    for line in lines:
        validate_batch_output_line(line)
    return lines


def check_line_body(endpoint: str, line: dict[str, Any]) -> None:
    """A line's body is what the endpoint answers: its spec schema, or ErrorResponse on 4xx/5xx;
    a 200 body also parses into the SDK's type with no unknown keys."""
    response = line["response"]
    if response is None:
        return
    schema, sdk_type, _ = ENDPOINTS[endpoint]
    if response["status_code"] >= 400:
        validate_component("ErrorResponse", response["body"])
        return
    validate_component(schema, response["body"])
    parse_strictly(sdk_type, response["body"])
