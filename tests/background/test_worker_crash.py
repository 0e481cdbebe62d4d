"""A worker killed with SIGKILL mid-job: a new worker finishes the job, nothing happens twice.

The worker runs as production runs it, `python -m workers` in its own process group,
configured by its environment only, against a real Temporal dev server (time does not skip)
and the emulator. The ledger and the artifacts live in the test's data directory, so the
assertions read what the worker processes wrote.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from openai import AsyncOpenAI
from temporalio.testing import WorkflowEnvironment

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from laneway.background import BackgroundJobInput, PollingPolicy
from laneway.jobs import DeliverToOutbox, ReviewPolicy
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.ledger import Ledger
from tests.background.conftest import REVIEWER, control, job_fault, start_job, wait_for_status
from tests.conftest import job_outcome, job_view
from tests.worker_process import WorkerProcess, wait_for, wait_until_polling
from workflows.background_job import BackgroundJobWorkflow

POLL_ROUTE = "GET /v1/responses/{id}"
CREATE_ROUTE = "POST /v1/responses"
# A poll every 2 s (after the first, immediate one): the kill lands well inside a gap, and the
# restarted worker's next poll comes soon whenever the kill happened.
POLLING = PollingPolicy(
    first_interval=timedelta(seconds=2), backoff=1.0, max_interval=timedelta(seconds=2)
)


@pytest.fixture(params=[False, True], ids=["key-honoured", "strict"])
def emulator_config(request: pytest.FixtureRequest) -> EmulatorConfig:
    # A response runs for a minute of real time, unless the test moves the emulated clock.
    # Strict: the emulator ignores Idempotency-Key, as a provider that promises nothing would.
    return EmulatorConfig(speed=600.0, response_in_progress_seconds=36_000, strict=request.param)


def request_count(emulator: EmulatorServer, route: str) -> int:
    return int(emulator.control.stats()["requests"].get(route, 0))


async def between_polls(emulator: EmulatorServer, quiet: float = 0.3) -> int:
    """Wait for a first answered poll, then until no new one arrives for `quiet` seconds.

    Polls are answered well within `quiet`, and the next one is due a second or more after
    the last, so this returns early in the gap between two polls. Returns the poll count.
    """
    await wait_for(lambda: request_count(emulator, POLL_ROUTE), "a first poll", limit=30)
    seen, since = request_count(emulator, POLL_ROUTE), time.monotonic()
    while time.monotonic() - since < quiet:
        await asyncio.sleep(0.05)
        now = request_count(emulator, POLL_ROUTE)
        if now != seen:
            seen, since = now, time.monotonic()
    return seen


async def test_sigkill_while_polling_then_restart(
    dev_server_env: WorkflowEnvironment,
    settings: Settings,
    emulator: EmulatorServer,
    openai_client: AsyncOpenAI,
    start_worker: Callable[[], WorkerProcess],
    make_job: Callable[..., BackgroundJobInput],
    tmp_path: Path,
) -> None:
    client = dev_server_env.client
    outbox = settings.outbox_path / "reviewed"
    job = make_job(
        "Crash test brief: the recovery was great.",
        review_policy=ReviewPolicy.REQUIRED,
        side_effect=DeliverToOutbox(path="reviewed"),
    ).model_copy(update={"polling": POLLING})

    first = start_worker()
    await wait_until_polling(client, settings.task_queue, first)
    handle = await start_job(dev_server_env, settings, job)
    await wait_for_status(handle, ProductStatus.RUNNING)
    polls_at_kill = await between_polls(emulator)
    response_id = (await job_view(handle)).provider_ids[-1]

    first.kill()
    assert not first.group_alive(), "the killed worker's process group is still there"
    # The provider finishes while no worker runs; nobody polls it meanwhile.
    emulator.control.advance_clock(40_000)
    assert request_count(emulator, POLL_ROUTE) == polls_at_kill
    assert (await openai_client.responses.retrieve(response_id)).status == "completed"
    polls_at_restart = polls_at_kill + 1  # counting the test's own look just now

    second = start_worker()
    await wait_until_polling(client, settings.task_queue, second)
    await wait_for_status(handle, ProductStatus.NEEDS_REVIEW, limit=45)
    await handle.execute_update(BackgroundJobWorkflow.approve, control(REVIEWER, "ok"))
    outcome = await job_outcome(handle)

    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    assert outcome.attempts == 1
    assert outcome.side_effect_ran
    stats = emulator.control.stats()
    assert stats["counts"]["responses"] == 1, stats
    assert stats["requests"][CREATE_ROUTE] == 1, stats
    assert stats["requests"][POLL_ROUTE] > polls_at_restart, "the new worker never polled"

    ledger = Ledger.from_url(settings.ledger_url)
    record = ledger.get_job(job.job_id)
    assert record is not None and record.provider_ids == [response_id]
    stored = ledger.get_result(job.job_id, 1)
    assert stored is not None and stored.inline_output
    assert ledger.get_result(job.job_id, 2) is None
    kinds = [event.kind for event in ledger.list_events(job.job_id)]
    assert kinds.count("created") == 1
    assert kinds.count("approved") == 1
    assert kinds.count("side_effect_ran") == 1
    assert [path.name for path in outbox.iterdir()] == [f"{job.job_id}.json"]
    delivered = json.loads((outbox / f"{job.job_id}.json").read_text())
    assert delivered["output"] == stored.inline_output
    assert "recovery was great" in delivered["output"]

    assert second.stop() == 0, "the restarted worker did not stop cleanly on SIGTERM"


async def test_sigkill_during_create_then_restart_creates_nothing_twice_or_says_so(
    dev_server_env: WorkflowEnvironment,
    settings: Settings,
    emulator: EmulatorServer,
    start_worker: Callable[[], WorkerProcess],
    make_job: Callable[..., BackgroundJobInput],
) -> None:
    """The worker dies with its create on the wire; the provider creates the response anyway.

    The restarted worker retries the create (once the dead attempt's 30 s timeout passes).
    Where the provider honours the idempotency key it gets the same response back; where it
    does not (strict), a second response exists, which the Responses API cannot list: the
    job records the possible duplicate and its likely cost in its audit trail.
    """
    strict = emulator.config.strict
    client = dev_server_env.client
    job = make_job("Crash test: an uncertain create.").model_copy(update={"polling": POLLING})
    held = emulator.control.add_fault(
        job_fault("latency", job, latency_seconds=2.0, times=1)
        | {"match": {"method": "POST", "path_regex": "^/v1/responses$"}}
    )
    intent_key = f"{job.job_id}/attempt-1"

    first = start_worker()
    await wait_until_polling(client, settings.task_queue, first)
    handle = await start_job(dev_server_env, settings, job)

    def create_held() -> bool:
        return any(f["id"] == held.id and f["fired"] for f in emulator.control.faults())

    await wait_for(create_held, "the create to reach the provider")
    first.kill()
    assert not first.group_alive(), "the killed worker's process group is still there"

    # The provider goes on with the create after the caller has gone.
    await wait_for(lambda: emulator.control.stats()["counts"].get("responses"), "the create")
    ledger = Ledger.from_url(settings.ledger_url)
    intent = ledger.get_provider_intent(intent_key)
    assert intent is not None and intent.provider_id is None, "the create should be uncertain"
    emulator.control.advance_clock(40_000)

    second = start_worker()
    await wait_until_polling(client, settings.task_queue, second)
    # The dead attempt times out after 30 s; the new worker then sends the create again.
    await wait_for(lambda: request_count(emulator, CREATE_ROUTE) >= 2, "the retried create", 50)
    stats = emulator.control.stats()
    made = 2 if strict else 1
    assert stats["counts"]["responses"] == made, f"responses created: {stats['ids']}"
    response_id = stats["ids"]["responses"][-1]
    if strict:
        emulator.control.advance_clock(40_000)  # the second response runs from now
    outcome = await asyncio.wait_for(job_outcome(handle), timeout=20)

    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    assert outcome.attempts == 1
    stats = emulator.control.stats()
    assert stats["counts"]["responses"] == made, stats
    assert stats["requests"][CREATE_ROUTE] == 2, "the create should have been retried once"
    intent = ledger.get_provider_intent(intent_key)
    assert intent is not None and intent.provider_id == response_id
    record = ledger.get_job(job.job_id)
    assert record is not None and record.provider_ids == [response_id]
    # The retried create is recorded as a possible duplicate, with its likely cost, in both
    # modes: Laneway cannot tell whether the provider honoured the key.
    duplicates = [e.note for e in ledger.list_events(job.job_id) if e.kind == "possible_duplicate"]
    assert len(duplicates) == 2, duplicates
    assert response_id in duplicates[0] and "cannot list" in duplicates[0]
    assert "would cost about $" in duplicates[1]
    assert ledger.get_result(job.job_id, 1) is not None
    assert ledger.get_result(job.job_id, 2) is None
    assert outcome.result is not None and outcome.result.output_chars > 0

    assert second.stop() == 0, "the restarted worker did not stop cleanly on SIGTERM"
