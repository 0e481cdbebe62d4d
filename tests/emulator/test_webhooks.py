"""Webhooks: signed deliveries the SDK accepts, retries, and the drop/duplicate/delay modes."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest
from openai import OpenAI
from openai.types.webhooks import BatchCompletedWebhookEvent, ResponseCompletedWebhookEvent

from emulator.server import EmulatorServer
from tests.emulator.conftest import StartEmulator, sdk
from tests.emulator.helpers import DAY, chat_line, start_batch, wait_until

SECRET = "whsec_" + base64.b64encode(b"emulator-test-secret-0123456789").decode()


@dataclass
class Receiver:
    """A tiny HTTP server recording every POST; answers the queued statuses, then 200."""

    url: str = ""
    deliveries: list[tuple[dict[str, str], str]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"])).decode()
            state.deliveries.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(state.statuses.pop(0) if state.statuses else 200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _unwrapper(server: EmulatorServer) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="test", webhook_secret=SECRET, max_retries=0)


def test_batch_and_response_events_verify(frozen: EmulatorServer, receiver: Receiver) -> None:
    client = _unwrapper(frozen)
    frozen.control.set_webhooks(receiver.url, SECRET)
    batch = start_batch(client, [chat_line(0)])
    response = client.responses.create(model="gpt-4o-mini", input="x", background=True)
    frozen.control.advance_clock(DAY / 2)
    wait_until(lambda: len(receiver.deliveries) == 2, what="two webhooks")

    events = {}
    for headers, body in receiver.deliveries:
        event = client.webhooks.unwrap(body, headers)
        events[event.type] = event
        assert event.id.startswith("evt_") and headers["webhook-id"]
    batch_event, response_event = events["batch.completed"], events["response.completed"]
    assert isinstance(batch_event, BatchCompletedWebhookEvent)
    assert isinstance(response_event, ResponseCompletedWebhookEvent)
    assert batch_event.data.id == batch.id and response_event.data.id == response.id


def test_a_tampered_body_does_not_verify(frozen: EmulatorServer, receiver: Receiver) -> None:
    client = _unwrapper(frozen)
    frozen.control.set_webhooks(receiver.url, SECRET)
    client.responses.cancel(client.responses.create(model="m", input="x", background=True).id)
    wait_until(lambda: len(receiver.deliveries) == 1, what="a webhook")
    headers, body = receiver.deliveries[0]
    assert client.webhooks.unwrap(body, headers).type == "response.cancelled"
    with pytest.raises(openai.InvalidWebhookSignatureError):
        client.webhooks.unwrap(body.replace("resp_", "resp_x"), headers)


def test_failed_and_expired_batches_notify(
    start_emulator: StartEmulator, receiver: Receiver
) -> None:
    server = start_emulator(
        webhook_url="placeholder", webhook_secret=SECRET, batch_seconds_per_request=5000.0
    )
    server.control.set_webhooks(receiver.url, SECRET)
    client = _unwrapper(server)
    start_batch(client, [chat_line(0), chat_line(0)])  # duplicate custom_id: fails
    start_batch(client, [chat_line(i) for i in range(30)])  # too slow: expires
    server.control.advance_clock(DAY + 60)
    wait_until(lambda: len(receiver.deliveries) == 2, what="two webhooks")
    types = {client.webhooks.unwrap(b, h).type for h, b in receiver.deliveries}
    assert types == {"batch.failed", "batch.expired"}


def test_non_2xx_is_retried(frozen: EmulatorServer, receiver: Receiver) -> None:
    receiver.statuses.extend([500, 503])
    frozen.control.set_webhooks(receiver.url, SECRET)
    client = _unwrapper(frozen)
    client.responses.cancel(client.responses.create(model="m", input="x", background=True).id)
    wait_until(lambda: len(receiver.deliveries) == 3, what="three attempts")
    assert len({headers["webhook-id"] for headers, _ in receiver.deliveries}) == 1
    assert frozen.control.stats()["webhooks"]["counts"]["delivered"] == 1


def test_drop_mode_sends_nothing(frozen: EmulatorServer, receiver: Receiver) -> None:
    frozen.control.set_webhooks(receiver.url, SECRET, mode="drop")
    client = sdk(frozen)
    client.responses.cancel(client.responses.create(model="m", input="x", background=True).id)
    wait_until(lambda: frozen.control.stats()["webhooks"]["counts"].get("dropped") == 1)
    assert receiver.deliveries == []


def test_duplicate_mode_sends_the_same_webhook_twice(
    frozen: EmulatorServer, receiver: Receiver
) -> None:
    frozen.control.set_webhooks(receiver.url, SECRET, mode="duplicate")
    client = _unwrapper(frozen)
    client.responses.cancel(client.responses.create(model="m", input="x", background=True).id)
    wait_until(lambda: len(receiver.deliveries) == 2, what="two copies")
    (first_headers, first_body), (second_headers, second_body) = receiver.deliveries
    assert first_headers["webhook-id"] == second_headers["webhook-id"]
    assert first_body == second_body
    assert client.webhooks.unwrap(second_body, second_headers).type == "response.cancelled"


def test_delay_mode_delivers_later(frozen: EmulatorServer, receiver: Receiver) -> None:
    frozen.control.set_webhooks(receiver.url, SECRET, mode="delay", delay_seconds=0.5)
    client = sdk(frozen)
    client.responses.cancel(client.responses.create(model="m", input="x", background=True).id)
    threading.Event().wait(0.25)
    assert receiver.deliveries == []
    wait_until(lambda: len(receiver.deliveries) == 1, what="the delayed webhook")
