"""Every failure is finite in the batch lane: an input no retry can fix ends the job at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from emulator.server import EmulatorServer
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.artifacts import ArtifactStore
from store.ledger import Ledger
from tests.batch.conftest import (
    classify_template,
    make_batch_job,
    records,
    start_batch,
    write_jsonl,
)
from tests.conftest import WorkerFactory, batch_outcome


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
