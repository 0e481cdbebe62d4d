"""API keys and Idempotency-Key replays."""

from __future__ import annotations

import io

import httpx
import openai
import pytest
from openai import OpenAI

from emulator.server import EmulatorServer
from tests.emulator.conftest import StartEmulator, sdk
from tests.emulator.helpers import chat_line, error_of, jsonl

UNAUTHORIZED_ERROR = {"type": "invalid_request_error", "param": None, "code": "invalid_api_key"}


def test_missing_key_is_a_401(frozen: EmulatorServer) -> None:
    answer = httpx.get(frozen.base_url + "/models")
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert {k: error[k] for k in UNAUTHORIZED_ERROR} == UNAUTHORIZED_ERROR and error["message"]


def test_configured_key_must_match(start_emulator: StartEmulator) -> None:
    server = start_emulator(api_key="sk-right")
    with pytest.raises(openai.AuthenticationError) as err:
        sdk(server, api_key="sk-wrong").models.list()
    assert error_of(err.value)["code"] == "invalid_api_key"
    assert [m.id for m in sdk(server, api_key="sk-right").models.list()]


def _key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def test_same_key_same_objects_counted_once(frozen: EmulatorServer, client: OpenAI) -> None:
    data = jsonl([chat_line(0)])
    files = [
        client.files.create(
            file=("in.jsonl", io.BytesIO(data)), purpose="batch", extra_headers=_key("f-1")
        )
        for _ in range(2)
    ]
    batches = [
        client.batches.create(
            input_file_id=files[0].id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            extra_headers=_key("b-1"),
        )
        for _ in range(2)
    ]
    responses = [
        client.responses.create(
            model="gpt-4o-mini", input="x", background=True, extra_headers=_key("r-1")
        )
        for _ in range(2)
    ]
    other = client.responses.create(model="gpt-4o-mini", input="x", extra_headers=_key("r-2"))

    assert files[0].id == files[1].id
    assert batches[0].id == batches[1].id
    assert responses[0].id == responses[1].id != other.id
    stats = frozen.control.stats()
    assert stats["counts"]["files"] == 1 and stats["ids"]["files"] == [files[0].id]
    assert stats["counts"]["batches"] == 1 and stats["ids"]["batches"] == [batches[0].id]
    assert stats["counts"]["responses"] == 2


def test_replay_returns_the_current_state(frozen: EmulatorServer, client: OpenAI) -> None:
    first = client.responses.create(
        model="gpt-4o-mini", input="x", background=True, extra_headers=_key("r-9")
    )
    frozen.control.advance_clock(3600)
    again = client.responses.create(
        model="gpt-4o-mini", input="x", background=True, extra_headers=_key("r-9")
    )
    assert first.status == "queued" and again.id == first.id and again.status == "completed"


def test_strict_mode_ignores_the_key_as_a_provider_that_promises_nothing(
    start_emulator: StartEmulator,
) -> None:
    server = start_emulator(strict=True)
    client = sdk(server)
    data = jsonl([chat_line(0)])
    files = [
        client.files.create(
            file=("in.jsonl", io.BytesIO(data)), purpose="batch", extra_headers=_key("f-1")
        )
        for _ in range(2)
    ]
    batches = [
        client.batches.create(
            input_file_id=files[0].id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            extra_headers=_key("b-1"),
        )
        for _ in range(2)
    ]
    responses = [
        client.responses.create(
            model="gpt-4o-mini", input="x", background=True, extra_headers=_key("r-1")
        )
        for _ in range(2)
    ]
    assert files[0].id != files[1].id
    assert batches[0].id != batches[1].id
    assert responses[0].id != responses[1].id
    counts = server.control.stats()["counts"]
    assert (counts["files"], counts["batches"], counts["responses"]) == (2, 2, 2)


def test_the_cli_takes_strict() -> None:
    from emulator.__main__ import parse_args

    assert parse_args(["--strict"]).strict is True
    assert parse_args([]).strict is False
