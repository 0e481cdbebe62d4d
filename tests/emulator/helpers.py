"""Builders for batch input files and small waits shared by the emulator's tests."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import openai
from openai import OpenAI
from openai.types import Batch, FileObject

from emulator.config import EmulatorConfig

DEFAULTS = EmulatorConfig()
VALIDATING = DEFAULTS.batch_validating_seconds
PER_REQUEST = DEFAULTS.batch_seconds_per_request
FINALIZING = DEFAULTS.batch_finalizing_seconds
CANCELLING = DEFAULTS.batch_cancelling_seconds
DAY = 24 * 3600


def text_for(index: int) -> str:
    mood = ("great product, love it", "terrible service, hate it", "arrived on tuesday")[index % 3]
    return f"record-{index} says {mood}"


def chat_line(index: int, model: str = "gpt-4o-mini", **overrides: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "custom_id": f"req-{index}",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": text_for(index)}]},
    }
    line.update(overrides)
    return line


def jsonl(lines: Sequence[dict[str, Any] | str]) -> bytes:
    rows = [row if isinstance(row, str) else json.dumps(row) for row in lines]
    return ("\n".join(rows) + "\n").encode()


def upload(client: OpenAI, data: bytes, name: str = "input.jsonl") -> FileObject:
    return client.files.create(file=(name, io.BytesIO(data)), purpose="batch")


def start_batch(
    client: OpenAI,
    lines: Sequence[dict[str, Any] | str],
    endpoint: str = "/v1/chat/completions",
    metadata: dict[str, str] | None = None,
) -> Batch:
    file = upload(client, jsonl(lines))
    return client.batches.create(
        input_file_id=file.id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window="24h",
        metadata=metadata,
    )


def read_jsonl(client: OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    return [json.loads(row) for row in client.files.content(file_id).text.splitlines()]


def by_custom_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["custom_id"]: row for row in rows}


def error_of(exc: openai.APIStatusError) -> dict[str, Any]:
    """The `error` object of an error answer (the SDK keeps it as `body`)."""
    assert isinstance(exc.body, dict), exc.body
    return exc.body


def wait_until(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
