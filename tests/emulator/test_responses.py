"""Responses: synchronous and background, cancel rules, incomplete, injected failures."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI

from emulator.config import EmulatorConfig
from emulator.faults import FaultKind, FaultMatch, FaultRule
from emulator.server import EmulatorServer
from tests.emulator.helpers import error_of

QUEUED = EmulatorConfig().response_queued_seconds
RUNNING = EmulatorConfig().response_in_progress_seconds
SPEC_REQUIRED = (
    "id",
    "object",
    "created_at",
    "error",
    "incomplete_details",
    "instructions",
    "model",
    "tools",
    "output",
    "parallel_tool_calls",
    "metadata",
    "tool_choice",
    "temperature",
    "top_p",
)


def test_synchronous_response_is_complete_at_once(client: OpenAI) -> None:
    response = client.responses.create(
        model="gpt-4o-mini", input="I love this excellent phone", instructions="Label it."
    )
    assert response.id.startswith("resp_") and response.status == "completed"
    assert response.output_text == "Sentiment: positive. Summary: I love this excellent phone"
    assert response.background is False and response.completed_at is not None
    assert response.usage is not None and response.usage.output_tokens > 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    assert response.usage.input_tokens_details.cached_tokens == 0
    raw = response.model_dump()
    assert all(field in raw for field in SPEC_REQUIRED)
    assert client.responses.retrieve(response.id).output_text == response.output_text


def test_json_mode_answers_json(client: OpenAI) -> None:
    response = client.responses.create(
        model="gpt-4o-mini", input="terrible delay", text={"format": {"type": "json_object"}}
    )
    assert response.output_text == '{"sentiment": "negative", "summary": "terrible delay"}'


def test_background_lifecycle_by_the_clock(frozen: EmulatorServer, client: OpenAI) -> None:
    created = client.responses.create(
        model="gpt-4o-mini", input="a calm note", background=True, metadata={"job": "7"}
    )
    assert created.status == "queued" and created.background is True
    assert created.output == [] and created.usage is None and created.metadata == {"job": "7"}

    frozen.control.advance_clock(QUEUED)
    assert client.responses.retrieve(created.id).status == "in_progress"

    frozen.control.advance_clock(RUNNING)
    done = client.responses.retrieve(created.id)
    assert done.status == "completed" and done.output_text.endswith("a calm note")
    assert done.usage is not None and done.completed_at is not None
    assert done.completed_at >= created.created_at + QUEUED + RUNNING - 1


def test_cancel_background_and_again(frozen: EmulatorServer, client: OpenAI) -> None:
    created = client.responses.create(model="gpt-4o-mini", input="x", background=True)
    cancelled = client.responses.cancel(created.id)
    assert cancelled.status == "cancelled" and cancelled.usage is None
    assert client.responses.cancel(created.id) == cancelled
    frozen.control.advance_clock(3600)
    assert client.responses.retrieve(created.id).status == "cancelled"


def test_cancel_finished_background_returns_it(frozen: EmulatorServer, client: OpenAI) -> None:
    created = client.responses.create(model="gpt-4o-mini", input="x", background=True)
    frozen.control.advance_clock(QUEUED + RUNNING)
    assert client.responses.cancel(created.id).status == "completed"


def test_cancel_non_background_is_a_400(client: OpenAI) -> None:
    response = client.responses.create(model="gpt-4o-mini", input="x")
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.cancel(response.id)
    assert error_of(err.value)["type"] == "invalid_request_error"


def test_unknown_response_is_a_404(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.retrieve("resp_missing")
    assert set(error_of(err.value)) == {"message", "type", "param", "code"}
    with pytest.raises(openai.NotFoundError):
        client.responses.cancel("resp_missing")


def test_small_max_output_tokens_ends_incomplete(frozen: EmulatorServer, client: OpenAI) -> None:
    created = client.responses.create(
        model="gpt-4o-mini", input="tell me", background=True, max_output_tokens=3
    )
    frozen.control.advance_clock(QUEUED + RUNNING)
    done = client.responses.retrieve(created.id)
    assert done.status == "incomplete" and done.incomplete_details is not None
    assert done.incomplete_details.reason == "max_output_tokens"
    assert done.usage is not None and done.usage.output_tokens == 3
    assert done.output_text == "Sentiment: neutral. Summary: tell me"[:12]


@pytest.mark.parametrize(
    ("kind", "status"),
    [(FaultKind.RESPONSE_FAIL, "failed"), (FaultKind.RESPONSE_INCOMPLETE, "incomplete")],
)
def test_injected_outcomes(
    frozen: EmulatorServer, client: OpenAI, kind: FaultKind, status: str
) -> None:
    frozen.control.add_fault(FaultRule(kind=kind, match=FaultMatch(model="gpt-4o"), times=1))
    hit = client.responses.create(model="gpt-4o", input="x", background=True)
    spared = client.responses.create(model="gpt-4o-mini", input="x", background=True)
    frozen.control.advance_clock(QUEUED + RUNNING)
    hit = client.responses.retrieve(hit.id)
    assert hit.status == status
    assert client.responses.retrieve(spared.id).status == "completed"
    if status == "failed":
        assert hit.error is not None and hit.error.code == "server_error" and hit.error.message
    else:
        assert hit.incomplete_details is not None
        assert hit.incomplete_details.reason == "max_output_tokens"


def test_stuck_response_stays_in_progress_until_cancelled(
    frozen: EmulatorServer, client: OpenAI
) -> None:
    created = client.responses.create(model="gpt-4o-mini", input="x", background=True)
    frozen.control.add_fault(
        FaultRule(kind=FaultKind.RESPONSE_STICK, match=FaultMatch(object_id=created.id))
    )
    frozen.control.advance_clock(10 * 24 * 3600)
    assert client.responses.retrieve(created.id).status == "in_progress"
    assert client.responses.cancel(created.id).status == "cancelled"
