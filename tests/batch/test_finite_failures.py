"""Every failure is finite in the batch lane: an input no retry can fix ends the job at once;
a stuck batch says for how long and since when."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from emulator.server import EmulatorServer
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.artifacts import ArtifactStore
from store.ledger import Ledger
from tests.batch.conftest import (
    batch_fault,
    classify_template,
    make_batch_job,
    provider_clock_follows_temporal,
    records,
    start_batch,
    write_jsonl,
)
from tests.conftest import WorkerFactory, batch_outcome, batch_view


async def test_a_missing_input_artifact_fails_the_job_at_once_not_retried_forever(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    job = make_batch_job(
        settings, write_jsonl(tmp_path / "in.jsonl", records(5)), template=classify_template()
    )
    ArtifactStore(settings.artifacts_path).path_for(job.spec.input).unlink()
    async with laneway_worker(dev_server_env):
        started = time.monotonic()
        handle = await start_batch(dev_server_env, settings, job)
        outcome = await asyncio.wait_for(batch_outcome(handle), 30)
        took = time.monotonic() - started
        closed = await handle.describe()
    assert outcome.status == ProductStatus.FAILED
    assert outcome.reason is not None and "is not in the store" in outcome.reason
    assert took < 20
    assert closed.status == WorkflowExecutionStatus.FAILED
    record = Ledger.from_url(settings.ledger_url).get_job(job.job_id)
    assert record is not None and record.status == ProductStatus.FAILED
    assert emulator.control.stats()["counts"]["batches"] == 0


async def test_a_batch_stuck_finalizing_says_for_how_long_and_since_when(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    job = make_batch_job(
        settings, write_jsonl(tmp_path / "in.jsonl", records(5)), template=classify_template()
    )
    emulator.control.add_fault(batch_fault("batch_stick_finalizing", job))
    shard = time_skipping_env.client.get_workflow_handle(f"{job.job_id}/round-1/shard-0")
    async with (
        laneway_worker(time_skipping_env),
        provider_clock_follows_temporal(time_skipping_env, emulator),
    ):
        handle = await start_batch(time_skipping_env, settings, job)
        # Waiting for the result lets the test server skip time; the view is read meanwhile.
        ending = asyncio.create_task(batch_outcome(handle))
        seen: list[str] = []
        details = ""
        while not ending.done():
            view = await batch_view(handle)
            if view.reason and "has been finalizing for" in view.reason:
                seen.append(view.reason)
                details = await _current_details(shard)
                if "for 4h" in view.reason:
                    break
            await asyncio.sleep(0.05)
        outcome = await ending
    assert seen, "the job never said its batch was stuck"
    assert re.search(
        r"has been finalizing for \d+h.*, since \d{4}-\d\d-\d\d \d\d:\d\d UTC", seen[-1]
    )
    assert "has been finalizing for" in details and "since" in details
    assert outcome.status == ProductStatus.COMPLETED, outcome.reason


async def _current_details(handle: WorkflowHandle[Any, Any]) -> str:
    metadata = await handle.query("__temporal_workflow_metadata")
    return str(metadata.current_details)
