"""States move by the emulated clock, never because someone polled."""

from __future__ import annotations

from openai import OpenAI

from emulator.server import EmulatorServer
from tests.emulator.conftest import StartEmulator, sdk
from tests.emulator.helpers import DAY, VALIDATING, chat_line, start_batch, wait_until


def test_polling_changes_nothing_and_advance_moves_it(
    frozen: EmulatorServer, client: OpenAI
) -> None:
    batch = start_batch(client, [chat_line(i) for i in range(3)])
    response = client.responses.create(model="gpt-4o-mini", input="x", background=True)
    for _ in range(20):
        assert client.batches.retrieve(batch.id) == batch
        assert client.responses.retrieve(response.id).status == "queued"

    frozen.control.advance_clock(VALIDATING)
    assert client.batches.retrieve(batch.id).status != "validating"
    frozen.control.advance_clock(DAY / 2)
    assert client.batches.retrieve(batch.id).status == "completed"
    assert client.responses.retrieve(response.id).status == "completed"


def test_timestamps_are_emulated_and_the_clock_runs_at_speed(
    start_emulator: StartEmulator,
) -> None:
    server = start_emulator(speed=3600.0)  # an emulated hour per real second
    client = sdk(server)
    before = server.control.now()
    response = client.responses.create(model="gpt-4o-mini", input="x", background=True)
    assert abs(response.created_at - before) < 3600
    wait_until(
        lambda: client.responses.retrieve(response.id).status == "completed",
        timeout=5,
        what="the ticker to finish the response",
    )
    assert server.control.now() - before > 12


def test_advance_returns_the_new_time(frozen: EmulatorServer) -> None:
    before = frozen.control.now()
    after = frozen.control.advance_clock(1000)
    assert 1000 <= after - before < 1001
