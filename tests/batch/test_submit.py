"""Submitting a shard: a retry finds the batch an earlier try created instead of paying twice."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from openai import AsyncOpenAI
from temporalio.testing import ActivityEnvironment

from activities.batches import BatchProviderActivities
from emulator.server import EmulatorServer
from laneway.batch import ShardRef, SubmitShardRequest
from laneway.settings import Settings
from store.artifacts import ArtifactStore
from store.ledger import Ledger, NewJob, upgrade_to_head
from store.ledger.batch_records import BatchRecords
from tests.batch.conftest import make_batch_job, request_lines, write_jsonl


async def test_a_retried_submit_finds_the_lost_create_by_its_metadata(
    settings: Settings, emulator: EmulatorServer, openai_client: AsyncOpenAI, tmp_path: Path
) -> None:
    upgrade_to_head(settings.ledger_url)
    ledger = Ledger.from_url(settings.ledger_url)
    store = ArtifactStore(settings.artifacts_path)
    job = make_batch_job(settings, write_jsonl(tmp_path / "in.jsonl", request_lines(5)))
    ledger.record_job(NewJob.batch(job.job_id, job.job_id, job.spec))
    activities = BatchProviderActivities(openai_client, ledger, BatchRecords(ledger.engine), store)
    request = SubmitShardRequest(
        job_id=job.job_id,
        shard=ShardRef(round=1, index=0, requests=5, file=job.spec.input, estimated_input_tokens=1),
        endpoint="/v1/responses",
        idempotency_key=f"{job.job_id}/round-1/shard-0/submission-1",
        submission=1,
    )
    # The first try created the batch but died before the ledger heard of it.
    ledger.record_provider_intent(job.job_id, request.idempotency_key, attempt=1)
    lost = await activities._create(request)

    retry = ActivityEnvironment()
    retry.info = dataclasses.replace(retry.info, attempt=2)
    found = await retry.run(activities.submit_batch_shard, request)

    assert found.batch_id == lost.id
    stats = emulator.control.stats()
    assert stats["requests"]["POST /v1/batches"] == 1, "the retry created nothing"
    intent = ledger.get_provider_intent(request.idempotency_key)
    assert intent is not None and intent.provider_id == lost.id
    record = ledger.get_job(job.job_id)
    assert record is not None and record.provider_ids == [lost.id]

    again = await retry.run(activities.submit_batch_shard, request)  # the ledger knows it now
    assert again.batch_id == lost.id
    assert emulator.control.stats()["requests"]["POST /v1/batches"] == 1
