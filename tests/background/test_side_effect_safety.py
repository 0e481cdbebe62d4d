"""Side effects that cannot escape (issue 11, Deliver 1) and signing keys out of history.

Jobs are started straight on Temporal here, as an old client or a hostile caller could, so what
is tested is the worker's own check at delivery time, after the reviewer approved.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateStage
from temporalio.testing import WorkflowEnvironment

from activities.side_effects import IDEMPOTENCY_HEADER
from emulator.server import EmulatorServer
from laneway.background import BackgroundJobInput, JobOutcome
from laneway.jobs import DeliverToOutbox, PostWebhook, ReviewPolicy
from laneway.settings import Settings
from laneway.status import ProductStatus
from tests.background.conftest import REVIEWER, background_job, control, start_job, wait_for_status
from tests.background.test_side_effects import Receiver, signature_is_valid
from tests.conftest import (
    TEST_WEBHOOK_SECRET,
    TEST_WEBHOOK_SECRET_REF,
    WorkerFactory,
    emulated_settings,
    job_outcome,
)
from tests.payload_keys import workers_data_converter
from workflows.background_job import BackgroundJobWorkflow


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()
    running.server.server_close()


async def approve_and_wait(handle: WorkflowHandle[Any, Any]) -> JobOutcome:
    await wait_for_status(handle, "needs_review")
    # Time skips only while the test waits for the result, not for an Update's answer.
    await handle.start_update(
        BackgroundJobWorkflow.approve,
        control(REVIEWER),
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
    )
    return await job_outcome(handle)


README = Path(__file__).parents[2] / "README.md"


def readme_receiver() -> Callable[..., int]:
    """The receiver-side check exactly as the README shows it."""
    text = README.read_text()
    block = next(b for b in text.split("```python\n")[1:] if "def receive(" in b)
    namespace: dict[str, Any] = {}
    exec(block.split("```", 1)[0], namespace)  # our own README, as a reader copies it
    receive: Callable[..., int] = namespace["receive"]
    return receive


class DedupingReceiver:
    """A receiver that checks deliveries with the README's `receive`.

    The first delivery is taken in and then answered 503, as if the answer were lost (a
    worker killed mid-POST looks the same to the receiver): Laneway delivers again."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.answers: list[int] = []
        self.acted_on: list[bytes] = []
        seen: set[str] = set()
        receive = readme_receiver()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(self.headers[IDEMPOTENCY_HEADER])
                answer = receive(
                    dict(self.headers),
                    body,
                    TEST_WEBHOOK_SECRET.encode(),
                    seen,
                    receiver.acted_on.append,
                )
                receiver.answers.append(answer)
                self.send_response(503 if len(receiver.requests) == 1 else answer)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/laneway"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


async def test_delivery_is_at_least_once_and_a_deduping_receiver_takes_it_once(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
) -> None:
    receiver = DedupingReceiver()
    try:
        job = background_job(
            review_policy=ReviewPolicy.REQUIRED,
            side_effect=PostWebhook(url=receiver.url, secret_ref=TEST_WEBHOOK_SECRET_REF),
        )
        async with laneway_worker(time_skipping_env):
            handle = await start_job(time_skipping_env, settings, job)
            outcome = await approve_and_wait(handle)
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    assert outcome.status == ProductStatus.COMPLETED and outcome.side_effect_ran
    assert receiver.requests == [job.job_id, job.job_id], "delivered twice, same stable key"
    assert receiver.answers == [200, 200], "both deliveries correctly signed"
    assert len(receiver.acted_on) == 1, "the receiver acted once"
    assert json.loads(receiver.acted_on[0])["job_id"] == job.job_id


async def test_signing_secret_never_enters_workflow_history(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    receiver: Receiver,
) -> None:
    job = background_job(
        review_policy=ReviewPolicy.REQUIRED,
        side_effect=PostWebhook(url=receiver.url, secret_ref=TEST_WEBHOOK_SECRET_REF),
    )
    async with laneway_worker(time_skipping_env):
        handle = await start_job(time_skipping_env, settings, job)
        outcome = await approve_and_wait(handle)
    assert outcome.side_effect_ran
    ((headers, body),) = receiver.deliveries
    assert signature_is_valid(headers["Laneway-Signature"], body), "signed with the named key"
    history = await handle.fetch_history()
    secret = TEST_WEBHOOK_SECRET.encode()
    # Payload bytes sit raw in each serialized event: none carries the key.
    leaking = [e.event_type for e in history.events if secret in e.SerializeToString()]
    assert leaking == []
    assert TEST_WEBHOOK_SECRET not in json.dumps(history.to_json_dict())
    # Decrypted (as the workers read it), the job's input names the secret by reference only.
    started = history.events[0].workflow_execution_started_event_attributes
    codec = workers_data_converter().payload_codec
    assert codec is not None
    decoded = await codec.decode(started.input.payloads)
    text = b"".join(payload.data for payload in decoded)
    assert TEST_WEBHOOK_SECRET_REF.encode() in text, "the history names the secret, by reference"
    assert secret not in text


class TestWithoutAllowList:
    @pytest.fixture
    def settings(self, emulator: EmulatorServer, tmp_path: Path) -> Settings:
        return emulated_settings(emulator, tmp_path / "var", "laneway-no-allow-list").model_copy(
            update={"webhook_allow_hosts": []}
        )

    async def test_webhook_to_loopback_is_refused_at_delivery(
        self,
        time_skipping_env: WorkflowEnvironment,
        laneway_worker: WorkerFactory,
        settings: Settings,
        receiver: Receiver,
    ) -> None:
        job = background_job(
            review_policy=ReviewPolicy.REQUIRED,
            side_effect=PostWebhook(url=receiver.url, secret_ref=TEST_WEBHOOK_SECRET_REF),
        )
        async with laneway_worker(time_skipping_env):
            handle = await start_job(time_skipping_env, settings, job)
            outcome = await approve_and_wait(handle)
        assert outcome.status == ProductStatus.FAILED
        assert outcome.reason is not None
        assert "must use https" in outcome.reason
        assert not outcome.side_effect_ran
        assert receiver.deliveries == []


async def test_outbox_symlink_out_of_the_root_is_refused_at_delivery(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    settings.outbox_path.mkdir(parents=True)
    (settings.outbox_path / "escape").symlink_to(elsewhere)
    job = background_job(
        review_policy=ReviewPolicy.REQUIRED, side_effect=DeliverToOutbox(path="escape/reports")
    )
    async with laneway_worker(time_skipping_env):
        handle = await start_job(time_skipping_env, settings, job)
        outcome = await approve_and_wait(handle)
    assert outcome.status == ProductStatus.FAILED
    assert outcome.reason is not None and "leaves the outbox root" in outcome.reason
    assert list(elsewhere.iterdir()) == []


def recorded_job(side_effect: dict[str, Any], make: Callable[..., BackgroundJobInput]) -> Any:
    """A job as the previous release recorded it (a spec new code refuses, read from JSON)."""
    data = json.loads(make(review_policy=ReviewPolicy.REQUIRED).model_dump_json())
    data["spec"]["side_effect"] = side_effect
    return BackgroundJobInput.model_validate_json(json.dumps(data))


async def test_an_old_job_with_a_directory_outside_the_root_is_refused_at_delivery(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    job = recorded_job({"kind": "deliver_to_outbox", "directory": str(outside)}, background_job)
    async with laneway_worker(time_skipping_env):
        handle = await start_job(time_skipping_env, settings, job)
        outcome = await approve_and_wait(handle)
    assert outcome.status == ProductStatus.FAILED
    assert outcome.reason is not None and "leaves the outbox root" in outcome.reason
    assert not outside.exists()


async def test_an_old_job_with_a_directory_under_the_root_is_still_delivered(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
) -> None:
    inside = settings.outbox_path / "old"
    job = recorded_job({"kind": "deliver_to_outbox", "directory": str(inside)}, background_job)
    async with laneway_worker(time_skipping_env):
        handle = await start_job(time_skipping_env, settings, job)
        outcome = await approve_and_wait(handle)
    assert outcome.status == ProductStatus.COMPLETED
    assert [p.name for p in inside.iterdir()] == [f"{job.job_id}.json"]
