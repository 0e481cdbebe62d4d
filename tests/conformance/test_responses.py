"""Responses through the SDK: background statuses stepped by the emulated clock, sync, cancel."""

from __future__ import annotations

import openai
import pytest
from openai.types.responses import Response

from emulator.server import EmulatorServer
from tests.conformance.conftest import CLOCK_KEY
from tests.conformance.helpers import MODEL
from tests.conformance.recorder import SpecRecorder
from tests.conformance.sdk_models import assert_known

QUEUED_SECONDS, RUNNING_SECONDS = 2, 10  # the emulator's defaults, in emulated seconds


def test_background_queued_running_completed(
    clock_emulator: EmulatorServer, recorder: SpecRecorder
) -> None:
    client, control = recorder.client(clock_emulator.base_url, CLOCK_KEY), clock_emulator.control
    created = client.responses.create(model=MODEL, input="A great plan", background=True)
    assert isinstance(created, Response) and created.status == "queued"
    assert created.background is True and created.usage is None and created.output == []
    seen = [created]
    for seconds in (0, QUEUED_SECONDS, RUNNING_SECONDS):
        control.advance_clock(seconds)
        seen.append(client.responses.retrieve(created.id))
    assert [r.status for r in seen] == ["queued", "queued", "in_progress", "completed"]
    done = seen[-1]
    assert done.completed_at is not None and done.usage is not None
    assert done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens
    assert done.output_text.startswith("Sentiment: positive")
    for response in seen:
        assert_known(response)
    recorder.assert_clean()


def test_cancel_in_progress_and_queued(
    clock_emulator: EmulatorServer, recorder: SpecRecorder
) -> None:
    client, control = recorder.client(clock_emulator.base_url, CLOCK_KEY), clock_emulator.control
    running = client.responses.create(model=MODEL, input="Slow work", background=True)
    control.advance_clock(QUEUED_SECONDS)
    assert client.responses.retrieve(running.id).status == "in_progress"
    assert client.responses.cancel(running.id).status == "cancelled"
    assert client.responses.cancel(running.id).status == "cancelled"  # idempotent
    control.advance_clock(RUNNING_SECONDS)
    assert client.responses.retrieve(running.id).status == "cancelled"  # stays cancelled
    queued = client.responses.create(model=MODEL, input="Never started", background=True)
    assert client.responses.cancel(queued.id).status == "cancelled"
    recorder.assert_clean()


@pytest.mark.parametrize(
    ("fault", "status"), [("response_fail", "failed"), ("response_incomplete", "incomplete")]
)
def test_failed_and_incomplete(
    clock_emulator: EmulatorServer, recorder: SpecRecorder, fault: str, status: str
) -> None:
    client, control = recorder.client(clock_emulator.base_url, CLOCK_KEY), clock_emulator.control
    control.add_fault({"kind": fault, "match": {"metadata_key": "fault"}})
    response = client.responses.create(
        model=MODEL,
        input="Write a long report about every lane we run, please",
        background=True,
        metadata={"fault": fault},
    )
    control.advance_clock(QUEUED_SECONDS + RUNNING_SECONDS)
    ended = client.responses.retrieve(response.id)
    assert ended.status == status
    if status == "failed":
        assert ended.error is not None and ended.error.code == "server_error"
    else:
        assert ended.incomplete_details is not None
        assert ended.incomplete_details.reason == "max_output_tokens"
    assert_known(ended)
    recorder.assert_clean()


def test_sync_response_and_refusals(fast_emulator: EmulatorServer, recorder: SpecRecorder) -> None:
    client = recorder.client(fast_emulator.base_url)
    sync = client.responses.create(model=MODEL, input="Now, please", instructions="Be brief")
    assert sync.status == "completed" and sync.background is False and sync.output_text
    assert sync.instructions == "Be brief"
    assert_known(sync)
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(sync.id)  # only background responses can be cancelled
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_missing")
    with pytest.raises(openai.NotFoundError):
        client.responses.cancel("resp_missing")
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model=MODEL, input=[])  # no input
    client.responses.delete(sync.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(sync.id)
    recorder.assert_clean()
