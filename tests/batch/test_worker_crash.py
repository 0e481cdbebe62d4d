"""A worker killed with SIGKILL while shards poll and while a shard ingests: nothing twice.

The workers run as production runs them (`python -m workers`, see tests/worker_process.py)
against a real Temporal dev server and the emulator; the emulated clock decides when the
provider finishes, so the kill lands where the test wants it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from laneway.background import PollingPolicy
from laneway.batch import BatchJobInput, BatchOutcome, RecordState
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
    wait_until,
    write_jsonl,
)
from tests.conftest import batch_outcome
from tests.worker_process import WorkerProcess, wait_for, wait_until_polling

POLLING = PollingPolicy(
    first_interval=timedelta(seconds=1), backoff=1.0, max_interval=timedelta(seconds=1)
)
POLL_ROUTE = "GET /v1/batches/{id}"
CONTENT_ROUTE = "GET /v1/files/{id}/content"


@pytest.fixture(params=[False, True], ids=["key-honoured", "strict"])
def emulator_config(request: pytest.FixtureRequest) -> EmulatorConfig:
    # A 1,000-request batch runs for ~50 s of real time, and 50,000 requests for hours,
    # unless the test moves the emulated clock (within the 24 h completion window).
    # Strict: the emulator ignores Idempotency-Key, as a provider that promises nothing would.
    return EmulatorConfig(speed=20.0, batch_seconds_per_request=1.0, strict=request.param)


def _job(settings: Settings, tmp_path: Path, count: int, per_shard: int) -> BatchJobInput:
    path = write_jsonl(tmp_path / "tickets.jsonl", records(count))
    job = make_batch_job(
        settings, path, template=classify_template(), shard_limits={"max_requests": per_shard}
    )
    return job.model_copy(update={"polling": POLLING})


def _requests(emulator: EmulatorServer, route: str) -> int:
    return int(emulator.control.stats()["requests"].get(route, 0))


def _assert_every_record_once(
    settings: Settings, job: BatchJobInput, outcome: BatchOutcome, count: int
) -> None:
    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    assert outcome.report is not None and outcome.report.rounds == 1
    store = ArtifactStore(settings.artifacts_path)
    with store.open(outcome.report.results) as handle:
        joined = [json.loads(line)["custom_id"] for line in handle]
    assert joined == [f"rec-{n}" for n in range(count)], "each record once, in input order"
    ledger_records = BatchRecords(Ledger.from_url(settings.ledger_url).engine)
    rows = list(ledger_records.records_in_order(job.job_id))
    assert len(rows) == count and len({r.custom_id for r in rows}) == count
    assert Counter(r.state for r in rows) == {RecordState.SUCCEEDED: count}


async def test_sigkill_while_shards_poll_then_restart(
    dev_server_env: WorkflowEnvironment,
    settings: Settings,
    emulator: EmulatorServer,
    start_worker: Callable[[], WorkerProcess],
    tmp_path: Path,
) -> None:
    client = dev_server_env.client
    job = _job(settings, tmp_path, 3000, per_shard=1000)
    first = start_worker()
    await wait_until_polling(client, settings.task_queue, first)
    handle = await start_batch(dev_server_env, settings, job)
    await wait_until(handle, lambda v: len(v.provider_ids) == 3, limit=60)
    await wait_for(lambda: _requests(emulator, POLL_ROUTE) >= 6, "the shards to poll")

    first.kill()
    assert not first.group_alive()
    batch_ids = emulator.control.stats()["ids"]["batches"]
    emulator.control.advance_clock(2_000)  # every batch finishes while no worker runs

    second = start_worker()
    await wait_until_polling(client, settings.task_queue, second)
    outcome = await batch_outcome(handle)

    _assert_every_record_once(settings, job, outcome, 3000)
    stats = emulator.control.stats()
    assert all(b["status"] == "completed" for b in provider_batch_dicts(emulator))
    assert stats["counts"]["batches"] == 3, "no shard created a second batch"
    assert stats["ids"]["batches"] == batch_ids
    assert stats["requests"]["POST /v1/batches"] == 3
    assert second.stop() == 0


async def test_sigkill_during_ingest_then_restart(
    dev_server_env: WorkflowEnvironment,
    settings: Settings,
    emulator: EmulatorServer,
    start_worker: Callable[[], WorkerProcess],
    tmp_path: Path,
) -> None:
    client = dev_server_env.client
    count = 50_000
    job = _job(settings, tmp_path, count, per_shard=count)
    ledger_records = BatchRecords(Ledger.from_url(settings.ledger_url).engine)
    first = start_worker()
    await wait_until_polling(client, settings.task_queue, first)
    handle = await start_batch(dev_server_env, settings, job)
    await wait_until(handle, lambda v: len(v.provider_ids) == 1, limit=60)
    emulator.control.advance_clock(60_000)  # the batch completes; ingest starts

    def ingest_under_way() -> bool:
        return ledger_records.counts(job.job_id).succeeded > 0

    await wait_for(ingest_under_way, "ingest to land its first records", limit=60, every=0.01)
    first.kill()
    landed = ledger_records.counts(job.job_id)
    assert 0 < landed.succeeded < count, f"the kill should land mid-ingest: {landed}"
    assert _requests(emulator, CONTENT_ROUTE) >= 1

    second = start_worker()
    await wait_until_polling(client, settings.task_queue, second)
    outcome = await batch_outcome(handle)

    _assert_every_record_once(settings, job, outcome, count)
    stats = emulator.control.stats()
    assert stats["counts"]["batches"] == 1 and stats["requests"]["POST /v1/batches"] == 1
    assert _requests(emulator, CONTENT_ROUTE) >= 2, "the restarted ingest downloaded again"
    assert second.stop() == 0
