"""Batch jobs that run for days of provider time: every workflow history stays small.

The time-skipping server jumps over the waits between polls; a bridge moves the emulated
provider's clock by as much as Temporal's clock moved, so a 20-hour batch takes 20 hours on
both sides and is polled all along (hundreds of polls), while the histories only grow with
shards and rounds.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from laneway.batch import BatchJobInput
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.ledger import Ledger
from store.ledger.batch_records import BatchRecords
from tests.batch.conftest import (
    batch_fault,
    classify_template,
    make_batch_job,
    provider_clock_follows_temporal,
    records,
    start_batch,
    write_jsonl,
)
from tests.conftest import WorkerFactory, batch_outcome

POLL_ROUTE = "GET /v1/batches/{id}"
# A workflow's history grows with what it decides, never with how long it waits.
MAX_JOB_EVENTS = 250
MAX_SHARD_EVENTS = 60
# A shard whose batch sits stuck for a day says so after 1h, 4h and 16h (a timer, a workflow
# task and a signal to its job each; a timer cancelled at each status change): ~35 more
# events, a fixed number whatever the wait.
MAX_STUCK_SHARD_EVENTS = MAX_SHARD_EVENTS + 45


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    # 720 emulated seconds per request: a shard of 100 requests runs 20 hours. At speed 1 the
    # provider's clock barely moves by itself; the bridge below moves it.
    return EmulatorConfig(speed=1.0, batch_seconds_per_request=720.0)


def _shard_ids(settings: Settings, job: BatchJobInput, first_round_shards: int) -> list[str]:
    """Every shard child the job ran: round 1's, then those the ledger's later rounds name."""
    engine = Ledger.from_url(settings.ledger_url).engine
    later = {(r.round, r.shard) for r in BatchRecords(engine).records_in_order(job.job_id)}
    ran = {(1, s) for s in range(first_round_shards)} | later
    return [f"{job.job_id}/round-{r}/shard-{s}" for r, s in sorted(ran)]


async def _history_lengths(client: Client, workflow_ids: list[str]) -> dict[str, int]:
    lengths = {}
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        lengths[workflow_id] = len(history.events)
    return lengths


async def test_days_of_batches_in_two_rounds_keep_every_history_bounded(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    """Three 20-hour shards, two at a time, then a retry round: 40+ hours, 500+ polls."""
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(300)),
        template=classify_template(),
        shard_limits={"max_requests": 100},
        max_shards_in_flight=2,
    )
    round_one = {"metadata_key": "laneway_round", "metadata_value": "1"}
    emulator.control.add_fault(
        batch_fault("batch_fail_fraction", job, fraction=0.05, seed=2, match=round_one)
    )
    client = time_skipping_env.client
    async with (
        laneway_worker(time_skipping_env),
        provider_clock_follows_temporal(time_skipping_env, emulator),
    ):
        handle = await start_batch(time_skipping_env, settings, job)
        outcome = await batch_outcome(handle)

    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    report = outcome.report
    assert report is not None and report.rounds == 2 and report.records.succeeded == 300
    described = await handle.describe()
    assert described.close_time is not None
    took = described.close_time - described.start_time
    assert took >= timedelta(hours=40), f"two 20-hour waves of shards, then a retry: {took}"

    polls = emulator.control.stats()["requests"][POLL_ROUTE]
    assert polls > 500, f"polled all along, at most five minutes apart: {polls}"

    shards = _shard_ids(settings, job, 3)
    assert len(shards) == 4 and shards[-1].endswith("/round-2/shard-0")
    lengths = await _history_lengths(client, [job.job_id, *shards])
    assert lengths[job.job_id] < MAX_JOB_EVENTS, lengths
    assert all(lengths[s] < MAX_SHARD_EVENTS for s in shards), lengths
    assert sum(lengths.values()) < polls / 2, "histories do not grow with the polls"


async def test_a_batch_stuck_finalizing_is_cancelled_after_its_window_and_kept(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    """The provider ran every request (4 hours) but never leaves `finalizing`: 26 hours after
    the batch last changed, the shard stops waiting, cancels the batch, and ingests the results
    the cancelled batch hands back."""
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(20)),
        template=classify_template(),
    )
    emulator.control.add_fault(batch_fault("batch_stick_finalizing", job))
    client = time_skipping_env.client
    async with (
        laneway_worker(time_skipping_env),
        provider_clock_follows_temporal(time_skipping_env, emulator),
    ):
        handle = await start_batch(time_skipping_env, settings, job)
        outcome = await batch_outcome(handle)

    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    assert outcome.report is not None and outcome.report.records.succeeded == 20
    stats = emulator.control.stats()
    assert stats["requests"]["POST /v1/batches/{id}/cancel"] == 1
    assert stats["requests"][POLL_ROUTE] > 300, "polled for 26 hours"
    described = await handle.describe()
    assert described.close_time is not None
    took = described.close_time - described.start_time
    running = timedelta(seconds=20 * 720)
    assert running + timedelta(hours=26) <= took < running + timedelta(hours=27), took

    shard = f"{job.job_id}/round-1/shard-0"
    lengths = await _history_lengths(client, [job.job_id, shard])
    assert lengths[job.job_id] < MAX_JOB_EVENTS, lengths
    assert lengths[shard] < MAX_STUCK_SHARD_EVENTS, lengths
