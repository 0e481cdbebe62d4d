"""Control surface: configuration from the environment, stats, reset, the async client."""

from __future__ import annotations

import pytest
from openai import OpenAI

from emulator.config import EmulatorConfig
from emulator.control import AsyncEmulatorControl
from emulator.faults import FaultKind
from emulator.server import EmulatorServer
from tests.emulator.helpers import chat_line, start_batch


def test_configuration_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANEWAY_EMULATOR_SPEED", "5")
    monkeypatch.setenv("LANEWAY_EMULATOR_API_KEY", "sk-env")
    monkeypatch.setenv(
        "LANEWAY_EMULATOR_FAULTS",
        '[{"kind": "http_429", "match": {"path_prefix": "/v1/batches"}, "retry_after": 3}]',
    )
    config = EmulatorConfig()
    assert (config.speed, config.api_key) == (5.0, "sk-env")
    (rule,) = config.faults
    assert rule.kind is FaultKind.HTTP_429 and rule.match.path_prefix == "/v1/batches"
    assert rule.retry_after == 3


def test_stats_count_and_list_ids_and_reset_clears(frozen: EmulatorServer, client: OpenAI) -> None:
    batch = start_batch(client, [chat_line(0)])
    response = client.responses.create(model="gpt-4o-mini", input="x")
    stats = frozen.control.stats()
    assert stats["counts"]["batches"] == 1 and stats["ids"]["batches"] == [batch.id]
    assert stats["ids"]["responses"] == [response.id] and stats["counts"]["files"] == 1
    frozen.control.add_fault({"kind": "http_500", "match": {"model": "nobody"}})
    assert len(frozen.control.faults()) == 1

    frozen.control.reset()
    stats = frozen.control.stats()
    assert all(count == 0 for count in stats["counts"].values())
    assert frozen.control.faults() == [] and client.batches.list().data == []


async def test_async_control(frozen: EmulatorServer) -> None:
    control = AsyncEmulatorControl(frozen.root_url)
    try:
        assert await control.health() == {"status": "ok"}
        rule = await control.add_fault({"kind": "latency", "latency_seconds": 0.01})
        assert rule.kind is FaultKind.LATENCY
        before = (await control.stats())["now"]
        assert await control.advance_clock(60) >= before + 60
        await control.clear_faults()
        assert (await control.stats())["faults"] == []
    finally:
        await control.aclose()
