"""Progress people can see: the status query, search attributes and current details."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
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
from workflows.search_attributes import (
    LANEWAY_LANE,
    LANEWAY_PROGRESS,
    LANEWAY_PROVIDER_IDS,
    LANEWAY_RECORDS_FAILED,
    LANEWAY_RECORDS_SUCCEEDED,
    LANEWAY_RECORDS_TOTAL,
    LANEWAY_STATUS,
)

SLOW_POLLING = PollingPolicy(
    first_interval=timedelta(minutes=10), backoff=1.0, max_interval=timedelta(minutes=10)
)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(speed=600.0, batch_seconds_per_request=0.05)


async def test_progress_in_query_search_attributes_and_details(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(300)),
        template=classify_template(),
        shard_limits={"max_requests": 100},
        max_shards_in_flight=1,
    )
    async with laneway_worker(dev_server_env):
        handle = await start_batch(dev_server_env, settings, job)
        partway = await wait_until(handle, lambda v: 0 < v.records.succeeded < 300)
        assert partway.status == ProductStatus.RUNNING and partway.round == 1
        assert partway.records.total == 300 and partway.records.pending > 0
        assert partway.shards_in_flight == 1 and "cancel" in partway.allowed_actions
        outcome = await batch_outcome(handle)
        details = await _current_details(handle)
        shard = dev_server_env.client.get_workflow_handle(f"{job.job_id}/round-1/shard-0")
        shard_details = await _current_details(shard)
        shard_summary = await (await shard.describe()).static_summary()
    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    assert "**completed**" in details and "300 succeeded" in details
    # Each shard shows its own provider batch, and where to act: on the job.
    assert shard_summary == f"shard 0 of round 1 of {job.job_id}: 100 records"
    assert shard_details.startswith("**completed** · batch_") and "100/100 done" in shard_details
    assert f"actions: on the job, {job.job_id}" in shard_details

    described = await handle.describe()
    attributes = described.typed_search_attributes
    assert attributes.get(LANEWAY_STATUS) == "completed"
    assert attributes.get(LANEWAY_LANE) == "batch"
    assert attributes.get(LANEWAY_RECORDS_TOTAL) == 300
    assert attributes.get(LANEWAY_RECORDS_SUCCEEDED) == 300
    assert attributes.get(LANEWAY_RECORDS_FAILED) == 0
    assert attributes.get(LANEWAY_PROGRESS) == (
        "round 1 · 300 total · 300 succeeded · 0 failed · 0 pending"
    )
    provider_ids = attributes.get(LANEWAY_PROVIDER_IDS)
    assert provider_ids is not None and len(provider_ids) == 3

    query = (
        f'LanewayLane = "batch" AND LanewayRecordsSucceeded >= 300 AND WorkflowId = "{job.job_id}"'
    )
    for _ in range(100):  # visibility is eventually consistent
        found = [w.id async for w in dev_server_env.client.list_workflows(query)]
        if found:
            break
        await asyncio.sleep(0.1)
    assert found == [job.job_id]


async def _current_details(handle: WorkflowHandle[Any, Any]) -> str:
    """What the Web UI shows as the workflow's current details."""
    metadata = await handle.query("__temporal_workflow_metadata")
    return str(metadata.current_details)
