"""What people see of a batch job while it runs and after: the status query, search attributes
(queried through visibility), current details, and a provider event routed to its shard."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from laneway.background import PollingPolicy
from laneway.batch import BatchProgress
from laneway.settings import Settings
from laneway.status import ProductStatus
from tests.batch.conftest import (
    BatchHandle,
    batch_fault,
    classify_template,
    make_batch_job,
    provider_batches,
    records,
    request_lines,
    start_batch,
    wait_until,
    write_jsonl,
)
from tests.conftest import WorkerFactory, batch_outcome, batch_view
from workflows.batch_job import BatchJobWorkflow
from workflows.search_attributes import (
    LANEWAY_JOB_TYPE,
    LANEWAY_LANE,
    LANEWAY_PROGRESS,
    LANEWAY_PROVIDER_IDS,
    LANEWAY_RECORDS_FAILED,
    LANEWAY_RECORDS_SUCCEEDED,
    LANEWAY_RECORDS_TOTAL,
    LANEWAY_STATUS,
    LANEWAY_WORKSPACE,
)

FAST_POLLING = PollingPolicy(
    first_interval=timedelta(milliseconds=200),
    backoff=1.0,
    max_interval=timedelta(milliseconds=200),
)
SLOW_POLLING = PollingPolicy(
    first_interval=timedelta(minutes=10), backoff=1.0, max_interval=timedelta(minutes=10)
)
POLL_ROUTE = "GET /v1/batches/{id}"
REFUSED = ("req-3", "req-4", "req-5")  # no input: the provider answers 400


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    # The pinned shard waits for its 24-hour window (144 real seconds) until the test jumps.
    return EmulatorConfig(speed=600.0)


async def _current_details(handle: WorkflowHandle[Any, Any]) -> str:
    """What the Web UI shows as the workflow's current details."""
    metadata = await handle.query("__temporal_workflow_metadata")
    return str(metadata.current_details)


async def _found(client: Client, query: str) -> list[str]:
    """Workflow ids a visibility query finds (eventually consistent: asked until found)."""
    found: list[str] = []
    for _ in range(100):
        found = [w.id async for w in client.list_workflows(query)]
        if found:
            return found
        await asyncio.sleep(0.1)
    return found


async def _attributes_settle(handle: BatchHandle, status: str) -> dict[str, Any]:
    for _ in range(100):
        attributes = (await handle.describe()).typed_search_attributes
        if attributes.get(LANEWAY_STATUS) == status:
            break
        await asyncio.sleep(0.05)
    return {
        "status": attributes.get(LANEWAY_STATUS),
        "lane": attributes.get(LANEWAY_LANE),
        "job_type": attributes.get(LANEWAY_JOB_TYPE),
        "workspace": attributes.get(LANEWAY_WORKSPACE),
        "total": attributes.get(LANEWAY_RECORDS_TOTAL),
        "succeeded": attributes.get(LANEWAY_RECORDS_SUCCEEDED),
        "failed": attributes.get(LANEWAY_RECORDS_FAILED),
        "progress": attributes.get(LANEWAY_PROGRESS),
        "provider_ids": sorted(attributes.get(LANEWAY_PROVIDER_IDS) or []),
    }


def _counts(view: BatchProgress) -> tuple[int, int, int, int, int]:
    r = view.records
    return view.round, r.total, r.succeeded, r.failed, r.pending


async def test_progress_while_running_and_at_the_end(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    """Three shards: two finish (three records refused), one is pinned half done until the
    test moves the provider past its window; its unrun half goes to round 2."""
    lines = list(request_lines(300))
    for line in lines:
        if line["custom_id"] in REFUSED:
            del line["body"]["input"]
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", lines),
        shard_limits={"max_requests": 100},
        job_input={"polling": FAST_POLLING},
    )
    pinned = {"metadata_key": "laneway_shard", "metadata_value": "1"}
    emulator.control.add_fault(
        batch_fault("batch_expire", job, fraction=0.5, times=1, match=pinned)
    )
    client = dev_server_env.client
    async with laneway_worker(dev_server_env):
        handle = await start_batch(dev_server_env, settings, job)
        # Both finished shards counted (their results can land in separate counts).
        running = await wait_until(
            handle, lambda v: (v.records.succeeded, v.records.failed) == (197, 3)
        )
        assert running.status == ProductStatus.RUNNING and running.lane == "batch"
        assert _counts(running) == (1, 300, 197, 3, 100)
        assert running.records.retryable == 0 and running.shards_in_flight == 1
        first_round = sorted(b.id for b in provider_batches(emulator))
        assert sorted(running.provider_ids) == first_round and len(first_round) == 3

        progress = "round 1 · 300 total · 197 succeeded · 3 failed · 100 pending"
        assert await _attributes_settle(handle, "running") == {
            "status": "running",
            "lane": "batch",
            "job_type": "ticket_triage",
            "workspace": "acme",
            "total": 300,
            "succeeded": 197,
            "failed": 3,
            "progress": progress,
            "provider_ids": first_round,
        }
        details = await _current_details(handle)
        assert details.startswith(f"**running** · {progress} · 1 shards in flight")
        assert details.endswith("allowed actions: cancel")
        running_query = (
            f'LanewayLane="batch" AND LanewayStatus="running" AND WorkflowId="{job.job_id}"'
        )
        assert await _found(client, running_query) == [job.job_id]
        [in_flight] = [b for b in provider_batches(emulator) if b.status == "in_progress"]
        by_batch = f'LanewayProviderIds="{in_flight.id}"'
        assert await _found(client, by_batch) == [job.job_id]

        emulator.control.advance_clock(24 * 3600)  # the pinned batch expires
        outcome = await batch_outcome(handle)
        final = await batch_view(handle)
        details = await _current_details(handle)

    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    assert final.status == ProductStatus.COMPLETED and _counts(final) == (2, 300, 297, 3, 0)
    assert final.shards_in_flight == 0 and final.cost_usd is not None
    all_batches = sorted(b.id for b in provider_batches(emulator))
    [second_round] = sorted(set(all_batches) - set(first_round))
    assert sorted(final.provider_ids) == all_batches

    attributes = await _attributes_settle(handle, "completed")
    assert attributes["progress"] == "round 2 · 300 total · 297 succeeded · 3 failed · 0 pending"
    assert (attributes["total"], attributes["succeeded"], attributes["failed"]) == (300, 297, 3)
    assert attributes["provider_ids"] == all_batches
    assert details.startswith("**completed** · round 2 · 300 total · 297 succeeded")
    assert "297 of 300 records succeeded in 2 rounds; 3 failed for good" in details
    failed_query = (
        f'LanewayLane="batch" AND LanewayRecordsFailed > 0 AND LanewayStatus="completed" '
        f'AND WorkflowId="{job.job_id}"'
    )
    assert await _found(client, failed_query) == [job.job_id]
    assert await _found(client, f'LanewayProviderIds="{second_round}"') == [job.job_id]


# The provider's clock stands nearly still: the test decides when the batches finish.
@pytest.mark.parametrize("emulator_config", [EmulatorConfig(speed=1.0)], ids=["still-clock"])
async def test_a_provider_event_wakes_only_the_shard_that_owns_the_batch(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    """Both batches finish at the provider right after the shards' first poll; they poll only
    every 10 minutes. The event for shard 1's batch ends shard 1 at once; shard 0 waits for
    its next poll."""
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(40)),
        template=classify_template(),
        shard_limits={"max_requests": 20},
        job_input={"polling": SLOW_POLLING},
    )
    client = time_skipping_env.client
    shard = [client.get_workflow_handle(f"{job.job_id}/round-1/shard-{n}") for n in (0, 1)]
    async with laneway_worker(time_skipping_env):
        handle = await start_batch(time_skipping_env, settings, job)
        view = await wait_until(handle, lambda v: len(v.provider_ids) == 2)
        for _ in range(400):  # both shards have polled once and wait 10 minutes for the next
            if emulator.control.stats()["requests"].get(POLL_ROUTE, 0) >= 2:
                break
            await asyncio.sleep(0.02)
        emulator.control.advance_clock(3600)
        owner = {(b.metadata or {})["laneway_shard"]: b.id for b in provider_batches(emulator)}
        assert {b.status for b in provider_batches(emulator)} == {"completed"}
        assert sorted(owner.values()) == sorted(view.provider_ids)

        await handle.signal(BatchJobWorkflow.provider_event, owner["1"])
        for _ in range(200):
            if (await shard[1].describe()).status == WorkflowExecutionStatus.COMPLETED:
                break
            await asyncio.sleep(0.05)
        assert (await shard[1].describe()).status == WorkflowExecutionStatus.COMPLETED
        assert (await shard[0].describe()).status == WorkflowExecutionStatus.RUNNING
        outcome = await batch_outcome(handle)

    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    assert outcome.report is not None and outcome.report.records.succeeded == 40
    took = {}
    for n in (0, 1):
        described = await shard[n].describe()
        assert described.close_time is not None
        took[n] = described.close_time - described.start_time
    assert took[1] < timedelta(minutes=10) <= took[0], took
