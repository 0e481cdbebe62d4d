"""HTTP faults as the SDK sees them: 429 with Retry-After, 5xx, broken connections, latency."""

from __future__ import annotations

import time

import openai
import pytest
from openai import OpenAI

from emulator.faults import FaultKind, FaultMatch, FaultRule
from emulator.server import EmulatorServer
from tests.emulator.conftest import StartEmulator, sdk
from tests.emulator.helpers import chat_line, error_of, jsonl, upload


def _chat(client: OpenAI, model: str = "gpt-4o-mini") -> str | None:
    answer = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}]
    )
    return answer.choices[0].message.content


def test_429_with_retry_after(frozen: EmulatorServer, client: OpenAI) -> None:
    frozen.control.add_fault(
        FaultRule(
            kind=FaultKind.HTTP_429,
            match=FaultMatch(path_prefix="/v1/chat"),
            times=1,
            retry_after=7,
        )
    )
    with pytest.raises(openai.RateLimitError) as err:
        _chat(client)
    assert err.value.status_code == 429
    assert err.value.response.headers["retry-after"] == "7"
    assert error_of(err.value)["code"] == "rate_limit_exceeded"
    assert error_of(err.value)["type"] == "requests"
    assert _chat(client)  # times=1: the next call goes through


@pytest.mark.parametrize(("kind", "status"), [(FaultKind.HTTP_500, 500), (FaultKind.HTTP_503, 503)])
def test_server_errors(
    frozen: EmulatorServer, client: OpenAI, kind: FaultKind, status: int
) -> None:
    frozen.control.add_fault(FaultRule(kind=kind, match=FaultMatch(model="gpt-4o"), times=2))
    assert _chat(client, "gpt-4o-mini")  # another model is not affected
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as err:
            _chat(client, "gpt-4o")
        assert err.value.status_code == status
        assert error_of(err.value)["type"] == "server_error"
    assert _chat(client, "gpt-4o")
    (rule,) = frozen.control.faults()
    assert rule["fired"] == 2


def test_dropped_connection_is_a_connection_error(frozen: EmulatorServer, client: OpenAI) -> None:
    frozen.control.add_fault(
        FaultRule(
            kind=FaultKind.DROP_CONNECTION,
            match=FaultMatch(method="POST", path_regex=r"^/v1/files$"),
            times=1,
        )
    )
    with pytest.raises(openai.APIConnectionError):
        upload(client, jsonl([chat_line(0)]))
    assert upload(client, jsonl([chat_line(0)])).id
    assert frozen.control.stats()["counts"]["files"] == 1


def test_latency(frozen: EmulatorServer, client: OpenAI) -> None:
    frozen.control.add_fault(FaultRule(kind=FaultKind.LATENCY, latency_seconds=0.4, times=1))
    started = time.monotonic()
    _chat(client)
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    _chat(client)
    assert time.monotonic() - started < 0.4


def test_probability_is_seeded(frozen: EmulatorServer, client: OpenAI) -> None:
    def pattern() -> list[bool]:
        frozen.control.clear_faults()
        frozen.control.add_fault(FaultRule(kind=FaultKind.HTTP_500, probability=0.5, seed=3))
        outcomes = []
        for _ in range(16):
            try:
                _chat(client)
                outcomes.append(True)
            except openai.InternalServerError:
                outcomes.append(False)
        return outcomes

    first = pattern()
    assert first == pattern() and any(first) and not all(first)


def test_faults_from_configuration(start_emulator: StartEmulator) -> None:
    server = start_emulator(faults=[{"kind": "http_503", "times": 1}])
    with pytest.raises(openai.InternalServerError):
        _chat(sdk(server))
    assert _chat(sdk(server))


def test_control_endpoints_are_not_faulted(frozen: EmulatorServer) -> None:
    frozen.control.add_fault(FaultRule(kind=FaultKind.HTTP_500))
    assert frozen.control.health() == {"status": "ok"}
