"""At most `max_shards_in_flight` provider batches at a time, for the enqueued-token limit."""

from __future__ import annotations

from pathlib import Path

import pytest
from openai import OpenAI
from temporalio.testing import WorkflowEnvironment

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from laneway.settings import Settings
from laneway.status import ProductStatus
from tests.batch.conftest import (
    classify_template,
    make_batch_job,
    records,
    start_batch,
    write_jsonl,
)
from tests.conftest import WorkerFactory, batch_outcome


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(speed=600.0, batch_seconds_per_request=0.5)


async def test_no_more_than_two_batches_overlap(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", records(500))
    job = make_batch_job(
        settings,
        path,
        template=classify_template(),
        shard_limits={"max_requests": 100},
        max_shards_in_flight=2,
    )
    async with laneway_worker(time_skipping_env):
        outcome = await batch_outcome(await start_batch(time_skipping_env, settings, job))
    assert outcome.status == ProductStatus.COMPLETED, outcome.reason

    client = OpenAI(base_url=emulator.base_url, api_key="test-key", max_retries=0)
    spans = [(b.created_at, b.completed_at or 0) for b in client.batches.list(limit=100)]
    assert len(spans) == 5
    for start, _end in spans:
        overlapping = sum(1 for s, e in spans if s <= start < e)
        assert overlapping <= 2, f"{overlapping} batches ran at once: {sorted(spans)}"
    starts = sorted(s for s, _e in spans)
    assert starts[2] >= sorted(e for _s, e in spans)[0], "the third waited for a first to end"
