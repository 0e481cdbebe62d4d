"""Fixtures for the emulator's tests: servers on free ports, the real SDK over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from openai import OpenAI

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer

# Slow enough that nothing moves unless a test advances the clock.
FROZEN = 0.0001

StartEmulator = Callable[..., EmulatorServer]


@pytest.fixture
def start_emulator() -> Iterator[StartEmulator]:
    """`start_emulator(speed=..., **config)` starts a server stopped after the test."""
    servers: list[EmulatorServer] = []

    def start(**overrides: Any) -> EmulatorServer:
        overrides.setdefault("speed", FROZEN)
        server = EmulatorServer(EmulatorConfig(**overrides))
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def _shared_frozen() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(speed=FROZEN)) as server:
        yield server


@pytest.fixture
def frozen(_shared_frozen: EmulatorServer) -> EmulatorServer:
    """An emulator whose clock only moves by advance_clock, emptied before each test.

    Shared by the tests (starting a server per test costs more than the test) and reset to its
    configured state: no objects, no added faults, no webhook target. Its clock keeps what
    earlier tests advanced, so tests reason about times relative to the objects they create.
    """
    _shared_frozen.control.reset()
    return _shared_frozen


@pytest.fixture
def client(frozen: EmulatorServer) -> OpenAI:
    return sdk(frozen)


def sdk(server: EmulatorServer, api_key: str = "test") -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key=api_key, max_retries=0)
