"""A provider event (the webhook path) makes the shard look at once; polling is the safety net."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from openai import OpenAI
from temporalio.testing import WorkflowEnvironment

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from laneway.background import PollingPolicy
from laneway.settings import Settings
from laneway.status import ProductStatus
from tests.batch.conftest import (
    classify_template,
    make_batch_job,
    records,
    start_batch,
    wait_until,
    write_jsonl,
)
from tests.conftest import WorkerFactory, batch_outcome
from workflows.batch_job import BatchJobWorkflow

SLOW_POLLING = PollingPolicy(
    first_interval=timedelta(minutes=10), backoff=1.0, max_interval=timedelta(minutes=10)
)
POLL_ROUTE = "GET /v1/batches/{id}"


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    # The provider's clock stands nearly still: the test decides when the batch finishes.
    return EmulatorConfig(speed=1.0)


async def _finish_after_first_poll(emulator: EmulatorServer, batch_id: str) -> None:
    client = OpenAI(base_url=emulator.base_url, api_key="test-key", max_retries=0)
    for _ in range(400):
        if emulator.control.stats()["requests"].get(POLL_ROUTE, 0) >= 1:
            break
        await asyncio.sleep(0.02)
    emulator.control.advance_clock(3600)
    for _ in range(400):
        if client.batches.retrieve(batch_id).status == "completed":
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the batch never completed at the provider")


async def test_a_provider_event_makes_the_shard_look_at_once(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    """Polling every 10 minutes: only the signal explains a completion within them."""
    job = make_batch_job(
        settings, write_jsonl(tmp_path / "in.jsonl", records(20)), template=classify_template()
    ).model_copy(update={"polling": SLOW_POLLING})
    async with laneway_worker(time_skipping_env):
        handle = await start_batch(time_skipping_env, settings, job)
        view = await wait_until(handle, lambda v: len(v.provider_ids) == 1)
        await _finish_after_first_poll(emulator, view.provider_ids[0])
        await handle.signal(BatchJobWorkflow.provider_event, "batch_of_someone_else")  # ignored
        await handle.signal(BatchJobWorkflow.provider_event, view.provider_ids[0])
        outcome = await batch_outcome(handle)
    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    described = await handle.describe()
    assert described.close_time is not None
    took = described.close_time - described.start_time
    assert took < timedelta(minutes=10), f"the job took {took}: the signal was not used"


async def test_without_an_event_the_slow_poll_still_finds_the_batch(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    job = make_batch_job(
        settings, write_jsonl(tmp_path / "in.jsonl", records(20)), template=classify_template()
    ).model_copy(update={"polling": SLOW_POLLING})
    async with laneway_worker(time_skipping_env):
        handle = await start_batch(time_skipping_env, settings, job)
        view = await wait_until(handle, lambda v: len(v.provider_ids) == 1)
        await _finish_after_first_poll(emulator, view.provider_ids[0])
        outcome = await batch_outcome(handle)
    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    described = await handle.describe()
    assert described.close_time is not None
    took = described.close_time - described.start_time
    assert timedelta(minutes=10) <= took < timedelta(minutes=11), took
