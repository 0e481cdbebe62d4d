"""Webhook deliveries: each payload is the spec's `Webhook<Event>` and the SDK unwraps it."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest

from emulator.server import EmulatorServer
from tests.conformance.conftest import CLOCK_KEY
from tests.conformance.helpers import MODEL, request_lines, upload
from tests.conformance.recorder import SpecRecorder
from tests.conformance.sdk_models import assert_known
from tests.conformance.spec import validate_component

SECRET = "whsec_" + base64.b64encode(b"conformance-webhook-key").decode()
Delivery = tuple[dict[str, str], bytes]


class Receiver(ThreadingHTTPServer):
    deliveries: list[Delivery]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.deliveries.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def receiver(clock_emulator: EmulatorServer) -> Iterator[Receiver]:
    server = Receiver(("127.0.0.1", 0), _Handler)
    server.deliveries = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    clock_emulator.control.set_webhooks(f"http://127.0.0.1:{server.server_port}/hook", SECRET)
    yield server
    clock_emulator.control.set_webhooks(None, None)
    server.shutdown()
    server.server_close()


def schema_name(event_type: str) -> str:
    """`batch.completed` -> `WebhookBatchCompleted`."""
    return "Webhook" + "".join(part.capitalize() for part in event_type.split("."))


def wait_for(receiver: Receiver, expected: set[tuple[str, str]]) -> list[Delivery]:
    """Every delivery so far, once the expected (type, object id) pairs have all arrived."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        deliveries = list(receiver.deliveries)
        seen = {(p["type"], p["data"]["id"]) for p in (json.loads(b) for _, b in deliveries)}
        if expected <= seen:
            return deliveries
        time.sleep(0.02)
    raise AssertionError(f"webhooks missing: {expected - seen}")


def test_batch_and_response_events(
    clock_emulator: EmulatorServer, recorder: SpecRecorder, receiver: Receiver
) -> None:
    client, control = recorder.client(clock_emulator.base_url, CLOCK_KEY), clock_emulator.control
    lines = request_lines("/v1/embeddings", 2)
    completed = client.batches.create(
        input_file_id=upload(client, lines), endpoint="/v1/embeddings", completion_window="24h"
    )
    cancelled = client.batches.create(
        input_file_id=upload(client, lines), endpoint="/v1/embeddings", completion_window="24h"
    )
    client.batches.cancel(cancelled.id)
    done = client.responses.create(model=MODEL, input="Fine work", background=True)
    stopped = client.responses.create(model=MODEL, input="Stop me", background=True)
    client.responses.cancel(stopped.id)
    control.advance_clock(60)
    expected = {
        ("batch.completed", completed.id),
        ("batch.cancelled", cancelled.id),
        ("response.completed", done.id),
        ("response.cancelled", stopped.id),
    }
    deliveries = wait_for(receiver, expected)
    events = {}
    for headers, body in deliveries:
        payload = json.loads(body)
        validate_component(schema_name(payload["type"]), payload)
        event = client.webhooks.unwrap(body.decode(), headers, secret=SECRET)  # checks signature
        assert_known(event)
        assert type(event).__name__ == schema_name(event.type)[7:] + "WebhookEvent"
        events[(event.type, payload["data"]["id"])] = event
    assert expected <= set(events)
    with pytest.raises(openai.InvalidWebhookSignatureError):
        headers, body = deliveries[0]
        client.webhooks.unwrap(body.decode() + " ", headers, secret=SECRET)
    recorder.assert_clean()
