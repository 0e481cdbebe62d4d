"""Cancelling a batch job mid-run: provider batches cancelled, partial results kept, counted."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from laneway.background import Actor, ControlRequest
from laneway.batch import BatchJobInput, RecordState
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.ledger import Ledger
from store.ledger.batch_records import BatchRecords
from tests.batch.conftest import (
    BatchHandle,
    classify_template,
    make_batch_job,
    provider_batch_dicts,
    records,
    start_batch,
    write_jsonl,
)
from tests.conftest import WorkerFactory, batch_outcome
from workflows.batch_job import BatchJobWorkflow

OPERATOR = Actor(id="otto", workspace="acme", roles=frozenset({"operator"}))


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    # 500 requests take 500 emulated seconds: about 8 s of real time at this speed.
    return EmulatorConfig(speed=60.0, batch_seconds_per_request=1.0)


def _job(settings: Settings, tmp_path: Path) -> BatchJobInput:
    """1,500 records in three shards, two in flight: the third is never sent."""
    return make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(1500)),
        template=classify_template(),
        shard_limits={"max_requests": 500},
        max_shards_in_flight=2,
    )


async def _wait_for_progress(emulator: EmulatorServer) -> None:
    """Until both batches in flight have run some of their requests."""

    def progressed() -> bool:
        batches = provider_batch_dicts(emulator)
        return len(batches) == 2 and all(b["request_counts"]["completed"] > 20 for b in batches)

    for _ in range(600):
        if progressed():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the batches never progressed: {provider_batch_dicts(emulator)}")


def _assert_stopped_with_partial_results(
    settings: Settings, emulator: EmulatorServer, job: BatchJobInput
) -> Counter[RecordState]:
    batches = provider_batch_dicts(emulator)
    assert len(batches) == 2, "the third shard was never submitted"
    assert {b["status"] for b in batches} == {"cancelled"}
    rows = list(
        BatchRecords(Ledger.from_url(settings.ledger_url).engine).records_in_order(job.job_id)
    )
    states = Counter(r.state for r in rows)
    assert len(rows) == 1500
    assert 0 < states[RecordState.SUCCEEDED] < 1000, "partial results of both batches kept"
    never_sent = [r for r in rows if r.state is RecordState.PENDING]
    assert len(never_sent) == 500 and {r.shard for r in never_sent} == {2}
    cancelled = [r for r in rows if r.state is RecordState.MISSING]
    assert cancelled and {r.error_code for r in cancelled} == {"batch_cancelled"}
    return states


async def test_cancel_update_mid_run(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    job = _job(settings, tmp_path)
    async with laneway_worker(time_skipping_env):
        handle: BatchHandle = await start_batch(time_skipping_env, settings, job)
        await _wait_for_progress(emulator)
        view = await handle.execute_update(
            BatchJobWorkflow.cancel, ControlRequest(actor=OPERATOR, note="wrong prompt")
        )
        outcome = await batch_outcome(handle)

    assert view.status == ProductStatus.CANCELED
    assert outcome.status == ProductStatus.CANCELED
    states = _assert_stopped_with_partial_results(settings, emulator, job)
    assert outcome.reason is not None
    assert outcome.reason.startswith("cancelled by otto: wrong prompt (")
    assert f"{states[RecordState.SUCCEEDED]} of 1500 succeeded" in outcome.reason
    assert "500 never sent" in outcome.reason
    ledger = Ledger.from_url(settings.ledger_url)
    record = ledger.get_job(job.job_id)
    assert record is not None and record.status == ProductStatus.CANCELED
    assert ledger.list_events(job.job_id)[-1].actor == "otto"


async def test_temporal_cancellation_mid_run(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    job = _job(settings, tmp_path)
    async with laneway_worker(time_skipping_env):
        handle = await start_batch(time_skipping_env, settings, job)
        await _wait_for_progress(emulator)
        await handle.cancel()
        outcome = await batch_outcome(handle)
        closed = await handle.describe()
    assert closed.status == WorkflowExecutionStatus.CANCELED
    assert outcome.status == ProductStatus.CANCELED and outcome.report is not None
    _assert_stopped_with_partial_results(settings, emulator, job)
    record = Ledger.from_url(settings.ledger_url).get_job(job.job_id)
    assert record is not None and record.status == ProductStatus.CANCELED
