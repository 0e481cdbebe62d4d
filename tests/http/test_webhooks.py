"""OpenAI webhooks through `POST /webhooks/openai`: prompt completion, nothing from forgeries.

The emulator signs its events the Standard Webhooks way and sends them to the API; jobs the
API starts poll the provider only every ten minutes, so a job that ends promptly was woken
by the webhook. Forged, stale and replayed deliveries are answered and change nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from emulator.webhooks import sign
from tests.batch.conftest import classify_template, records, write_jsonl
from tests.conftest import WorkerFactory
from tests.http.conftest import ApiProcess, bearer
from tests.http.test_api import BACKGROUND_JOB, wait_for_status

SECRET = "whsec_" + base64.b64encode(b"laneway-webhook-test-secret-0123").decode()
WRONG_SECRET = "whsec_" + base64.b64encode(b"someone-else-entirely-0123456789").decode()
LONG = 36_000  # emulated seconds a response works unless the clock jumps
BATCH_SECONDS_PER_REQUEST = 9_000  # 3 records: well inside the batch's 24 h window


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(
        speed=1.0,
        response_queued_seconds=0,
        response_in_progress_seconds=LONG,
        batch_validating_seconds=0,
        batch_seconds_per_request=BATCH_SECONDS_PER_REQUEST,
        batch_finalizing_seconds=0,
    )


@pytest.fixture
def webhook_api(start_api: Callable[..., ApiProcess], emulator: EmulatorServer) -> ApiProcess:
    api = start_api(OPENAI_WEBHOOK_SECRET=SECRET, LANEWAY_WEBHOOK_POLL_INTERVAL="PT10M")
    emulator.control.set_webhooks(f"{api.url}/webhooks/openai", SECRET)
    return api


def delivery(
    provider_id: str, *, secret: str = SECRET, age_seconds: int = 0, webhook_id: str = "wh_t1"
) -> tuple[bytes, dict[str, str]]:
    """A `response.completed` delivery as OpenAI would send it, signed with `secret`."""
    body = json.dumps(
        {
            "id": "evt_test",
            "object": "event",
            "type": "response.completed",
            "created_at": int(time.time()),
            "data": {"id": provider_id},
        }
    )
    timestamp = int(time.time()) - age_seconds
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
        "content-type": "application/json",
    }
    return body.encode(), headers


async def provider_id_of(api: httpx.AsyncClient, job_id: str) -> str:
    """The job's response id, once created. Its product status may still say queued: the
    provider sends no webhook for in_progress, so a slowly polling job learns it late."""
    deadline = time.monotonic() + 30
    while True:
        job = (await api.get(f"/v1/jobs/{job_id}", headers=bearer("tok-alice"))).json()["job"]
        if job["provider_ids"]:
            return str(job["provider_ids"][0])
        assert time.monotonic() < deadline, f"no response created: {job}"
        await asyncio.sleep(0.1)


async def signals_received(temporal: Client, job_id: str) -> int:
    history = await temporal.get_workflow_handle(job_id).fetch_history()
    signaled = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    return sum(1 for event in history.events if event.event_type == signaled)


async def polls_backed_off(emulator: EmulatorServer) -> None:
    """Four more polls (backing off 1, 2, 4 s), then a quiet 2 s: the next poll is seconds away."""
    route = "GET /v1/responses/{id}"

    def polls() -> int:
        return int(emulator.control.stats()["requests"].get(route, 0))

    start, deadline = polls(), time.monotonic() + 60
    quiet_since, seen = time.monotonic(), start
    while seen < start + 4 or time.monotonic() - quiet_since < 2:
        assert time.monotonic() < deadline, "the job's polls never backed off"
        await asyncio.sleep(0.05)
        if polls() != seen:
            quiet_since, seen = time.monotonic(), polls()


async def polls_cut_short(temporal: Client, job_id: str) -> int:
    history = await temporal.get_workflow_handle(job_id).fetch_history()
    cancel_requested = EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED
    return sum(1 for event in history.events if event.event_type == cancel_requested)


async def settled_into_slow_polling(emulator: EmulatorServer, route: str) -> None:
    """The job asked the provider, found it still working, and waits out its long interval."""
    seen = -1
    for _ in range(100):
        polls = emulator.control.stats()["requests"].get(route, 0)
        if polls and polls == seen:
            return
        seen = polls
        await asyncio.sleep(0.3)
    raise AssertionError(f"the job never settled into slow polling of {route}")


async def test_background_job_completes_within_a_second_of_the_provider(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    emulator: EmulatorServer,
    webhook_api: ApiProcess,
) -> None:
    alice = bearer("tok-alice")
    async with (
        laneway_worker(dev_server_env),
        httpx.AsyncClient(base_url=webhook_api.url, timeout=30) as api,
    ):
        started = await api.post(
            "/v1/jobs/background", json={**BACKGROUND_JOB, "review_policy": "auto"}, headers=alice
        )
        job_id = started.json()["job_id"]
        # No webhook comes for in_progress: the first quick polls see it.
        running = await wait_for_status(api, job_id, "running")
        response_id = running["job"]["provider_ids"][0]

        await refused_deliveries_change_nothing(api, dev_server_env.client, job_id, response_id)
        await polls_backed_off(emulator)

        emulator.control.advance_clock(LONG)  # the provider finishes now
        finished = time.monotonic()
        await wait_for_status(api, job_id, "completed", every=0.02)
        assert time.monotonic() - finished < 1.0
    assert await signals_received(dev_server_env.client, job_id) == 2  # ours, then the emulator's
    # Each signal cut a waiting poll short: the webhook, not a poll, found the end.
    assert await polls_cut_short(dev_server_env.client, job_id) == 2


async def refused_deliveries_change_nothing(
    api: httpx.AsyncClient, temporal: Client, job_id: str, response_id: str
) -> None:
    before = await signals_received(temporal, job_id)
    forged = delivery(response_id, secret=WRONG_SECRET, webhook_id="wh_forged")
    stale = delivery(response_id, age_seconds=600, webhook_id="wh_stale")
    tampered_body, tampered_headers = delivery(response_id, webhook_id="wh_tampered")
    tampered = (tampered_body.replace(b"evt_test", b"evt_other"), tampered_headers)
    unsigned = (forged[0], {k: v for k, v in forged[1].items() if k != "webhook-signature"})
    for body, headers in (forged, stale, tampered, unsigned):
        answer = await api.post("/webhooks/openai", content=body, headers=headers)
        assert answer.status_code == 400, answer.text
    assert await signals_received(temporal, job_id) == before

    # A genuine delivery wakes the job, which asks the provider itself: still in progress.
    body, headers = delivery(response_id, webhook_id="wh_genuine")
    first = await api.post("/webhooks/openai", content=body, headers=headers)
    assert first.json() == {"outcome": "signalled"}
    replayed = await api.post("/webhooks/openai", content=body, headers=headers)
    assert replayed.status_code == 200 and replayed.json() == {"outcome": "duplicate"}
    assert await signals_received(temporal, job_id) == before + 1
    status = (await api.get(f"/v1/jobs/{job_id}", headers=bearer("tok-alice"))).json()
    assert status["job"]["status"] in ("queued", "running"), "a webhook alone finished nothing"


async def test_batch_job_follows_the_batch_webhook(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    emulator: EmulatorServer,
    webhook_api: ApiProcess,
    tmp_path: Path,
) -> None:
    path = write_jsonl(tmp_path / "tickets.jsonl", records(3))
    spec: dict[str, Any] = {
        "job_type": "ticket_triage",
        "input_format": "records",
        "template": classify_template().model_dump(mode="json"),
    }
    async with (
        laneway_worker(dev_server_env),
        httpx.AsyncClient(base_url=webhook_api.url, timeout=30) as api,
    ):
        started = await api.post(
            "/v1/jobs/batch",
            files={"file": ("tickets.jsonl", path.read_bytes(), "application/jsonl")},
            data={"spec": json.dumps(spec)},
            headers=bearer("tok-alice"),
        )
        job_id = started.json()["job_id"]
        await wait_for_status(api, job_id, "running")
        await settled_into_slow_polling(emulator, "GET /v1/batches/{id}")

        emulator.control.advance_clock(3 * BATCH_SECONDS_PER_REQUEST)
        finished = time.monotonic()
        done = await wait_for_status(api, job_id, "completed")
        # Ingest and results building follow the provider's end; the ten-minute poll does not.
        assert time.monotonic() - finished < 10
    assert done["job"]["records"]["succeeded"] == 3


async def test_a_lost_webhook_costs_one_poll_interval_at_most(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    emulator: EmulatorServer,
    start_api: Callable[..., ApiProcess],
) -> None:
    api = start_api(OPENAI_WEBHOOK_SECRET=SECRET, LANEWAY_WEBHOOK_POLL_INTERVAL="PT3S")
    emulator.control.set_webhooks(f"{api.url}/webhooks/openai", SECRET, mode="drop")
    async with (
        laneway_worker(dev_server_env),
        httpx.AsyncClient(base_url=api.url, timeout=30) as http,
    ):
        started = await http.post(
            "/v1/jobs/background",
            json={**BACKGROUND_JOB, "review_policy": "auto"},
            headers=bearer("tok-alice"),
        )
        job_id = started.json()["job_id"]
        await provider_id_of(http, job_id)
        await settled_into_slow_polling(emulator, "GET /v1/responses/{id}")
        emulator.control.advance_clock(LONG)
        finished = time.monotonic()
        await wait_for_status(http, job_id, "completed")
        assert time.monotonic() - finished < 3 + 2  # the safety-net poll, plus the finish
    assert emulator.control.stats()["webhooks"]["counts"].get("dropped", 0) >= 1
    assert await signals_received(dev_server_env.client, job_id) == 0


async def test_webhooks_are_off_without_a_secret(start_api: Callable[..., ApiProcess]) -> None:
    api = start_api()
    body, headers = delivery("resp_x")
    async with httpx.AsyncClient(base_url=api.url) as http:
        answer = await http.post("/webhooks/openai", content=body, headers=headers)
    assert answer.status_code == 404 and "OPENAI_WEBHOOK_SECRET" in answer.text
