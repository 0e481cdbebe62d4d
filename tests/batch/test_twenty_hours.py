"""A 20-hour batch: hundreds of polls under durable timers, and every history stays small."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from laneway.settings import Settings
from laneway.status import ProductStatus
from tests.batch.conftest import (
    classify_template,
    make_batch_job,
    provider_clock_follows_temporal,
    records,
    start_batch,
    write_jsonl,
)
from tests.conftest import WorkerFactory, batch_outcome

POLL_ROUTE = "GET /v1/batches/{id}"


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    # 100 requests of 12 emulated minutes each: 20 hours in progress. The emulator's own
    # clock barely moves; the test moves it along with Temporal's skipped time.
    return EmulatorConfig(speed=1.0, batch_seconds_per_request=720.0)


async def test_a_twenty_hour_batch_keeps_every_history_bounded(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    job = make_batch_job(
        settings, write_jsonl(tmp_path / "in.jsonl", records(100)), template=classify_template()
    )
    client = time_skipping_env.client
    async with (
        laneway_worker(time_skipping_env),
        provider_clock_follows_temporal(time_skipping_env, emulator),
    ):
        handle = await start_batch(time_skipping_env, settings, job)
        started = await time_skipping_env.get_current_time()
        outcome = await batch_outcome(handle)
        took = await time_skipping_env.get_current_time() - started

    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    assert outcome.report is not None and outcome.report.records.succeeded == 100
    assert took >= timedelta(hours=20), f"the batch took {took}"
    polls = emulator.control.stats()["requests"][POLL_ROUTE]
    assert polls > 200, "polled all along, at most five minutes apart"

    job_history = await handle.fetch_history()
    shard = client.get_workflow_handle(f"{job.job_id}/round-1/shard-0")
    shard_history = await shard.fetch_history()
    assert len(job_history.events) < 120, len(job_history.events)
    assert len(shard_history.events) < 60, len(shard_history.events)
