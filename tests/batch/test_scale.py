"""OpenAI's scale: 120,000 records become 3 shards, every record joined back exactly once."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from laneway.batch import RecordState
from laneway.jobs import ArtifactRef
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.artifacts import ArtifactStore
from store.ledger import Ledger
from store.ledger.batch_records import BatchRecords
from tests.batch.conftest import (
    classify_template,
    make_batch_job,
    provider_batch_dicts,
    records,
    start_batch,
    write_jsonl,
)
from tests.conftest import WorkerFactory, batch_outcome

RECORDS = 120_000


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    # Requests take no emulated time: the test is about volume, not waiting.
    return EmulatorConfig(speed=600.0, batch_seconds_per_request=0.0)


async def test_120k_records_three_shards_all_joined_once(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    path = write_jsonl(tmp_path / "tickets.jsonl", records(RECORDS))
    job = make_batch_job(settings, path, template=classify_template())
    async with laneway_worker(time_skipping_env):
        handle = await start_batch(time_skipping_env, settings, job)
        outcome = await batch_outcome(handle)

    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    stats = emulator.control.stats()
    assert stats["counts"]["batches"] == 3, "50,000 + 50,000 + 20,000 requests"
    sizes = sorted(b["request_counts"]["total"] for b in provider_batch_dicts(emulator))
    assert sizes == [20_000, 50_000, 50_000]

    report = outcome.report
    assert report is not None
    assert report.records.total == report.records.succeeded == RECORDS
    assert report.rounds == 1
    expected_ids = [f"rec-{n}" for n in range(RECORDS)]
    results = _custom_ids(ArtifactStore(settings.artifacts_path), report.results)
    assert results == expected_ids, "joined on custom_id, in input order, each once"
    assert ArtifactStore(settings.artifacts_path).read_bytes(report.errors) == b""

    ledger_records = BatchRecords(Ledger.from_url(settings.ledger_url).engine)
    states = Counter(r.state for r in ledger_records.records_in_order(job.job_id))
    assert states == {RecordState.SUCCEEDED: RECORDS}
    assert report.usage.input_tokens > 0 and report.cost_batch_usd is not None
    assert report.cost_standard_usd == report.cost_batch_usd * 2


def _custom_ids(store: ArtifactStore, ref: ArtifactRef) -> list[str]:
    with store.open(ref) as handle:
        return [json.loads(line)["custom_id"] for line in handle]
