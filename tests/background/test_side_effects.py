"""The signed-webhook side effect, escalation, and what the Web UI sees of a job."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateStage
from temporalio.testing import WorkflowEnvironment

from activities.side_effects import SIGNATURE_HEADER
from laneway.background import BackgroundJobInput, JobView
from laneway.jobs import PostWebhook, ReviewPolicy
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.ledger import Ledger
from tests.background.conftest import OPERATOR, REVIEWER, control, start_job, wait_for_status
from tests.conftest import (
    TEST_WEBHOOK_SECRET,
    TEST_WEBHOOK_SECRET_REF,
    WorkerFactory,
    job_outcome,
)
from workflows.background_job import BackgroundJobWorkflow

SECRET = TEST_WEBHOOK_SECRET


class Receiver:
    """A local HTTP endpoint that records what it was sent."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.deliveries.append((dict(self.headers), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/laneway"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()
    running.server.server_close()


def signature_is_valid(header: str, body: bytes) -> bool:
    fields = dict(part.split("=", 1) for part in header.split(","))
    signed = f"{fields['t']}.".encode() + body
    expected = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


async def test_approved_job_is_posted_signed_once(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    make_job: Callable[..., BackgroundJobInput],
    receiver: Receiver,
) -> None:
    job = make_job(
        "Announcement draft: the new lanes are great.",
        review_policy=ReviewPolicy.REQUIRED,
        side_effect=PostWebhook(url=receiver.url, secret_ref=TEST_WEBHOOK_SECRET_REF),
    )
    async with laneway_worker(time_skipping_env):
        handle = await start_job(time_skipping_env, settings, job)
        await wait_for_status(handle, "needs_review")
        await handle.execute_update(BackgroundJobWorkflow.approve, control(REVIEWER))
        outcome = await job_outcome(handle)
    assert outcome.side_effect_ran
    ((headers, body),) = receiver.deliveries
    assert headers["Idempotency-Key"] == job.job_id
    assert signature_is_valid(headers[SIGNATURE_HEADER], body)
    delivered = json.loads(body)
    assert delivered["job_id"] == job.job_id
    assert "new lanes are great" in delivered["output"]
    side_effect = Ledger.from_url(settings.ledger_url).get_side_effect(job.job_id)
    assert side_effect is not None and side_effect.outcome == "delivered"


async def test_escalation_flags_the_job_without_moving_it(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    make_job: Callable[..., BackgroundJobInput],
) -> None:
    job = make_job(review_policy=ReviewPolicy.REQUIRED)
    async with laneway_worker(dev_server_env):
        handle = await dev_server_env.client.start_workflow(
            BackgroundJobWorkflow.run,
            job,
            id=job.job_id,
            task_queue=settings.task_queue,
            static_summary="research_brief for acme by alice",
        )
        await wait_for_status(handle, "needs_review")
        view = await handle.execute_update(
            BackgroundJobWorkflow.escalate, control(OPERATOR, "customer is waiting")
        )
        assert isinstance(view, JobView) and view.escalated
        assert view.status == ProductStatus.NEEDS_REVIEW
        assert "escalate" not in view.allowed_actions
        metadata = await handle.query("__temporal_workflow_metadata")
        details = metadata.current_details
        assert "needs_review" in details and "escalated" in details
        assert "allowed actions: approve, reject, cancel" in details
        await handle.execute_update(BackgroundJobWorkflow.approve, control(REVIEWER))
        assert (await job_outcome(handle)).status == ProductStatus.COMPLETED
    events = Ledger.from_url(settings.ledger_url).list_events(job.job_id)
    escalation = next(event for event in events if event.kind == "escalated")
    assert (escalation.actor, escalation.note) == ("otto", "customer is waiting")


async def test_a_side_effect_that_keeps_failing_fails_the_job_with_a_reason(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    make_job: Callable[..., BackgroundJobInput],
    receiver: Receiver,
) -> None:
    receiver.server.shutdown()
    receiver.server.server_close()  # nothing listens there any more
    job = make_job(
        review_policy=ReviewPolicy.REQUIRED,
        side_effect=PostWebhook(url=receiver.url, secret_ref=TEST_WEBHOOK_SECRET_REF),
    )
    async with laneway_worker(time_skipping_env):
        handle = await start_job(time_skipping_env, settings, job)
        await wait_for_status(handle, "needs_review")
        # Time skips only while the test waits for the result, not for an Update's answer.
        approval = await handle.start_update(
            BackgroundJobWorkflow.approve,
            control(REVIEWER),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        )
        outcome = await job_outcome(handle)
        view = await approval.result()
    assert view.status == ProductStatus.FAILED
    assert outcome.status == ProductStatus.FAILED
    assert outcome.reason is not None
    assert outcome.reason.startswith("the approved side effect failed: could not reach")
    assert not outcome.side_effect_ran
