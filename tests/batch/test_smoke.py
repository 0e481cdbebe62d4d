"""A small batch job end to end."""

from __future__ import annotations

from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from emulator.server import EmulatorServer
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.artifacts import ArtifactStore
from tests.batch.conftest import (
    classify_template,
    make_batch_job,
    read_jsonl,
    records,
    start_batch,
    write_jsonl,
)
from tests.conftest import WorkerFactory, batch_outcome


async def test_records_with_template_complete_joined_in_input_order(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", records(250))
    job = make_batch_job(
        settings, path, template=classify_template(), shard_limits={"max_requests": 100}
    )
    async with laneway_worker(time_skipping_env):
        outcome = await batch_outcome(await start_batch(time_skipping_env, settings, job))
    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    report = outcome.report
    assert report is not None
    assert report.records.total == 250 and report.records.succeeded == 250
    results = read_jsonl(ArtifactStore(settings.artifacts_path), report.results)
    assert [r["custom_id"] for r in results] == [f"rec-{n}" for n in range(250)]
    assert results[7]["record"]["title"].startswith("Ticket 7")
    assert emulator.control.stats()["counts"]["batches"] == 3
