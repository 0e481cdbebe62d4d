"""The replay corpus's scenarios: each drives one real job down one path, returns its histories.

Each scenario runs alone, with its own time-skipping Temporal test server, OpenAI emulator,
data directory and Laneway worker (`workers.main.build_worker`). That way one scenario can be
captured again without the others (`scripts/capture_histories.py --only NAME`). Job ids are
fixed (`replay-<scenario>`), so the replay test's manifest knows each history's workflow id:
a batch job's child ids derive from it, and replay checks them.

No scenario depends on how a workflow closes (completed, failed, canceled): each one waits
for the close, whatever it is, then fetches the histories. A job that did not take the
scenario's path (a fault that never fired, no second round) raises ScenarioWentAstray rather
than passing off another path's history as this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from openai.types import Batch
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from laneway.background import Actor, ControlRequest, PollingPolicy
from laneway.batch import BatchJobInput
from laneway.jobs import DeliverToOutbox, ReviewPolicy
from laneway.settings import Settings
from laneway.status import ProductStatus
from tests.background.conftest import (
    OPERATOR,
    REQUESTER,
    REVIEWER,
    WORKSPACE,
    background_job,
    job_fault,
    start_job,
    wait_for_status,
)
from tests.batch.conftest import (
    batch_fault,
    classify_template,
    make_batch_job,
    provider_batches,
    provider_clock_follows_temporal,
    records,
    start_batch,
    wait_until,
    write_jsonl,
)
from tests.conftest import emulated_settings, start_time_skipping_env
from workers.main import build_worker
from workflows.background_job import BackgroundJobWorkflow
from workflows.batch_job import BatchJobWorkflow

HISTORIES_DIR = Path(__file__).parent / "histories"
TASK_QUEUE = "laneway-replay"
# Real seconds a job may take to close once it is left to run; time skipping makes days of
# durable timers pass in well under a second, so this only catches a stuck job.
CLOSE_LIMIT = 120.0
# Batch scenarios that act mid-run poll quickly, so each step takes a fraction of a second.
FAST_POLLING = PollingPolicy(
    first_interval=timedelta(milliseconds=200),
    backoff=1.0,
    max_interval=timedelta(milliseconds=200),
)

Histories = dict[str, WorkflowHistory]  # path under HISTORIES_DIR -> history


class ScenarioWentAstray(AssertionError):
    """The job did not take the scenario's path, or never closed."""


def check(condition: bool, what: str) -> None:
    if not condition:
        raise ScenarioWentAstray(what)


def history_file(history: WorkflowHistory, name: str) -> str:
    """`<workflow type>/<name>.json`: the type is read from the history itself."""
    started = history.events[0].workflow_execution_started_event_attributes
    return f"{started.workflow_type.name}/{name}.json"


@dataclass(frozen=True)
class Rig:
    """What a scenario drives: a time-skipping server, the emulator, a worker on TASK_QUEUE."""

    env: WorkflowEnvironment
    settings: Settings
    emulator: EmulatorServer
    workdir: Path
    job_id: str

    @property
    def client(self) -> Client:
        return self.env.client

    async def history(self, workflow_id: str, name: str) -> Histories:
        """The latest run of `workflow_id`, saved as `name`."""
        history = await self.client.get_workflow_handle(workflow_id).fetch_history()
        return {history_file(history, name): history}

    async def runs(self, workflow_id: str, name: str) -> Histories:
        """Every run of a continue-as-new chain, first to last, as `<name>_run<n>`."""
        chain: list[WorkflowHistory] = []
        run_id: str | None = None
        while True:
            handle = self.client.get_workflow_handle(workflow_id, run_id=run_id)
            history = await handle.fetch_history()
            chain.insert(0, history)
            started = history.events[0].workflow_execution_started_event_attributes
            run_id = started.continued_execution_run_id or None
            if run_id is None:
                break
        return {
            history_file(history, f"{name}_run{n}"): history
            for n, history in enumerate(chain, start=1)
        }

    def input_file(self, count: int) -> Path:
        return write_jsonl(self.workdir / "input.jsonl", records(count))

    def add_fault(self, rule: dict[str, Any]) -> None:
        self.emulator.control.add_fault(rule)

    async def batches(self) -> list[Batch]:
        return await asyncio.to_thread(provider_batches, self.emulator)


Drive = Callable[[Rig], Awaitable[Histories]]


@dataclass(frozen=True)
class Scenario:
    name: str
    drive: Drive
    emulator: dict[str, Any] = field(default_factory=dict)  # EmulatorConfig overrides

    @property
    def job_id(self) -> str:
        return "replay-" + self.name.replace("_", "-")

    async def capture(self) -> Histories:
        async with rig(self.job_id, EmulatorConfig(speed=600.0, **self.emulator)) as running:
            return await self.drive(running)


SCENARIOS: dict[str, Scenario] = {}


def scenario(**emulator: Any) -> Callable[[Drive], Drive]:
    """Register a scenario under its function's name; keywords override the emulator's config."""

    def register(drive: Drive) -> Drive:
        SCENARIOS[drive.__name__] = Scenario(drive.__name__, drive, emulator)
        return drive

    return register


@contextlib.asynccontextmanager
async def rig(job_id: str, config: EmulatorConfig) -> AsyncIterator[Rig]:
    with (
        tempfile.TemporaryDirectory(prefix="laneway-replay-") as tmp,
        EmulatorServer(config) as emulator,
    ):
        workdir = Path(tmp)
        # A fixed identity: no host name in saved histories, and no pid to differ by.
        env = await start_time_skipping_env(identity=TASK_QUEUE)
        try:
            settings = emulated_settings(emulator, workdir / "var", TASK_QUEUE)
            async with (
                build_worker(env.client, settings),
                # Days skipped by the test server pass at the provider too (batch windows).
                provider_clock_follows_temporal(env, emulator),
            ):
                yield Rig(env, settings, emulator, workdir, job_id)
        finally:
            await env.shutdown()


async def until_closed(handle: WorkflowHandle[Any, Any]) -> None:
    """Wait for the job to close however it closes, following continue-as-new.

    Awaiting `result()` is what lets the time-skipping server skip ahead; whether it returns
    or raises (a failed or canceled close) is the workflow's business, not the scenario's.
    """
    try:
        async with asyncio.timeout(CLOSE_LIMIT):
            await handle.result()
    except WorkflowFailureError:
        pass
    except TimeoutError:
        raise ScenarioWentAstray(f"{handle.id} did not close within {CLOSE_LIMIT:.0f} s") from None


def shard_id(job: BatchJobInput, round_: int, index: int) -> str:
    return f"{job.job_id}/round-{round_}/shard-{index}"


def in_round(round_: int) -> dict[str, str]:
    return {"metadata_key": "laneway_round", "metadata_value": str(round_)}


# ---- background lane ---------------------------------------------------------------------


@scenario()
async def background_happy(rig: Rig) -> Histories:
    handle = await start_job(rig.env, rig.settings, background_job(job_id=rig.job_id))
    await until_closed(handle)
    return await rig.history(rig.job_id, "happy")


@scenario()
async def background_review_approve(rig: Rig) -> Histories:
    """Approved, then the side effect (an outbox delivery) runs."""
    job = background_job(
        job_id=rig.job_id,
        review_policy=ReviewPolicy.REQUIRED,
        side_effect=DeliverToOutbox(path="reviewed"),
    )
    handle = await start_job(rig.env, rig.settings, job)
    await wait_for_status(handle, "needs_review")
    await handle.execute_update(
        BackgroundJobWorkflow.approve, ControlRequest(actor=REVIEWER, note="reads well")
    )
    await until_closed(handle)
    return await rig.history(rig.job_id, "review_approve")


@scenario()
async def background_review_reject(rig: Rig) -> Histories:
    job = background_job(job_id=rig.job_id, review_policy=ReviewPolicy.REQUIRED)
    handle = await start_job(rig.env, rig.settings, job)
    await wait_for_status(handle, "needs_review")
    await handle.execute_update(
        BackgroundJobWorkflow.reject, ControlRequest(actor=REVIEWER, note="sources too thin")
    )
    await until_closed(handle)
    return await rig.history(rig.job_id, "review_reject")


@scenario()
async def background_review_expiry(rig: Rig) -> Histories:
    """Nobody decides: the review deadline (3 days, skipped) passes."""
    job = background_job(job_id=rig.job_id, review_policy=ReviewPolicy.REQUIRED)
    handle = await start_job(rig.env, rig.settings, job)
    await wait_for_status(handle, "needs_review")
    await until_closed(handle)
    return await rig.history(rig.job_id, "review_expiry")


@scenario()
async def background_failed_hold_retry(rig: Rig) -> Histories:
    """The first response fails; during the failed hold an operator retries; it completes."""
    job = background_job(job_id=rig.job_id)
    rig.add_fault(job_fault("response_fail", job, times=1, message="GPU fell over"))
    handle = await start_job(rig.env, rig.settings, job)
    await wait_for_status(handle, "failed")
    await handle.execute_update(
        BackgroundJobWorkflow.retry, ControlRequest(actor=OPERATOR, note="provider recovered")
    )
    await until_closed(handle)
    return await rig.history(rig.job_id, "failed_hold_retry")


@scenario()
async def background_cancel(rig: Rig) -> Histories:
    """Cancelled while the provider works (the response is held in progress)."""
    job = background_job(job_id=rig.job_id)
    rig.add_fault(job_fault("response_stick", job))
    handle = await start_job(rig.env, rig.settings, job)
    await wait_for_status(handle, "running")
    await handle.execute_update(
        BackgroundJobWorkflow.cancel, ControlRequest(actor=OPERATOR, note="not needed any more")
    )
    await until_closed(handle)
    return await rig.history(rig.job_id, "cancel")


# ---- batch lane --------------------------------------------------------------------------


@scenario()
async def batch_happy(rig: Rig) -> Histories:
    """One shard, no faults: the job, and its shard polling its batch to completion."""
    job = make_batch_job(
        rig.settings, rig.input_file(100), job_id=rig.job_id, template=classify_template()
    )
    await until_closed(await start_batch(rig.env, rig.settings, job))
    return {
        **await rig.history(job.job_id, "happy"),
        **await rig.history(shard_id(job, 1, 0), "poll_to_completion"),
    }


# An expired batch ends at its completion window: 10 emulated minutes here, not 24 hours.
@scenario(batch_completion_window_seconds=600)
async def batch_rounds(rig: Rig) -> Histories:
    """Three shards; retryable record failures and an expired shard make a second round."""
    job = make_batch_job(
        rig.settings,
        rig.input_file(300),
        job_id=rig.job_id,
        template=classify_template(),
        shard_limits={"max_requests": 100},
    )
    rig.add_fault(
        batch_fault(
            "batch_fail_fraction", job, fraction=0.1, seed=1, status_code=500, match=in_round(1)
        )
    )
    last_shard = {"metadata_key": "laneway_shard", "metadata_value": "2"}
    rig.add_fault(batch_fault("batch_expire", job, fraction=0.5, times=1, match=last_shard))
    await until_closed(await start_batch(rig.env, rig.settings, job))
    batches = await rig.batches()
    check(any(b.status == "expired" for b in batches), "no shard of round 1 expired")
    check(any((b.metadata or {}).get("laneway_round") == "2" for b in batches), "no second round")
    return await rig.history(job.job_id, "rounds")


@scenario()
async def batch_continue_as_new(rig: Rig) -> Histories:
    """A retry round starts in a new run (the history limit is one event): both runs saved."""
    job = make_batch_job(
        rig.settings,
        rig.input_file(200),
        job_id=rig.job_id,
        template=classify_template(),
        shard_limits={"max_requests": 100},
        job_input={"continue_as_new_after_events": 1},
    )
    rig.add_fault(
        batch_fault(
            "batch_fail_fraction", job, fraction=0.2, seed=1, status_code=500, match=in_round(1)
        )
    )
    await until_closed(await start_batch(rig.env, rig.settings, job))
    runs = await rig.runs(job.job_id, "continue_as_new")
    check(len(runs) >= 2, "the job never continued as new")
    return runs


@scenario()
async def batch_plan_approval(rig: Rig) -> Histories:
    """A plan above the workspace's threshold waits; a reviewer approves it."""
    job = make_batch_job(
        rig.settings,
        rig.input_file(50),
        job_id=rig.job_id,
        template=classify_template(),
        job_input={"plan_approval_above_usd": Decimal("0")},
    )
    handle = await start_batch(rig.env, rig.settings, job)
    await wait_until(handle, lambda view: view.status == ProductStatus.NEEDS_REVIEW)
    await handle.execute_update(
        BatchJobWorkflow.approve, ControlRequest(actor=REVIEWER, note="worth it")
    )
    await until_closed(handle)
    return await rig.history(job.job_id, "plan_approval")


@scenario()
async def batch_cancel(rig: Rig) -> Histories:
    """The requester cancels while two shards' batches are half done: the job, and a shard
    that was stopped (cancels its batch, keeps the partial results)."""
    job = make_batch_job(
        rig.settings,
        rig.input_file(200),
        job_id=rig.job_id,
        template=classify_template(),
        shard_limits={"max_requests": 100},
        job_input={"polling": FAST_POLLING},
    )
    # Each batch runs half its requests, then waits for a 24-hour window: pinned mid-run.
    rig.add_fault(batch_fault("batch_expire", job, fraction=0.5))
    handle = await start_batch(rig.env, rig.settings, job)
    await until_pinned(rig, count=2, done=50)
    await wait_until(handle, lambda view: view.shards_in_flight == 2)
    requester = Actor(id=REQUESTER, workspace=WORKSPACE)
    await handle.execute_update(
        BatchJobWorkflow.cancel, ControlRequest(actor=requester, note="wrong prompt")
    )
    await until_closed(handle)
    return {
        **await rig.history(job.job_id, "cancel"),
        **await rig.history(shard_id(job, 1, 0), "stopped"),
    }


async def until_pinned(rig: Rig, *, count: int, done: int, limit: float = 30.0) -> None:
    """Until `count` provider batches are in progress with exactly `done` requests run."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        batches = await rig.batches()
        if len(batches) == count and all(
            b.status == "in_progress" and b.request_counts and b.request_counts.completed == done
            for b in batches
        ):
            return
        await asyncio.sleep(0.05)
    raise ScenarioWentAstray(f"{count} batches were never in progress with {done} requests run")


@scenario()
async def batch_provider_failure(rig: Rig) -> Histories:
    """The provider fails the batch as a whole (its input file failed validation)."""
    job = make_batch_job(
        rig.settings, rig.input_file(100), job_id=rig.job_id, template=classify_template()
    )
    rig.add_fault(batch_fault("batch_validation_failed", job))
    await until_closed(await start_batch(rig.env, rig.settings, job))
    check([b.status for b in await rig.batches()] == ["failed"], "the provider batch did not fail")
    return await rig.history(job.job_id, "provider_failure")


# ---- one shard ---------------------------------------------------------------------------


@scenario()
async def shard_token_limit(rig: Rig) -> Histories:
    """Refused once for the enqueued-token limit; after a durable backoff, resubmitted."""
    job = make_batch_job(
        rig.settings,
        rig.input_file(100),
        job_id=rig.job_id,
        template=classify_template(),
        job_input={"token_limit_backoff": timedelta(minutes=20)},
    )
    rig.add_fault(batch_fault("batch_token_limit_exceeded", job, times=1))
    await until_closed(await start_batch(rig.env, rig.settings, job))
    statuses = sorted(b.status for b in await rig.batches())
    check(statuses == ["completed", "failed"], f"expected a refusal then a batch: {statuses}")
    return await rig.history(shard_id(job, 1, 0), "token_limit_resubmit")
