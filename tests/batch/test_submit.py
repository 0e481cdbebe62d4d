"""Submitting a shard: a retry finds the batch an earlier try created instead of paying twice,
and creates its batch from the file an earlier try uploaded instead of uploading it again."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from openai import AsyncOpenAI
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.batches import BatchProviderActivities
from emulator.faults import FaultKind, FaultMatch, FaultRule
from emulator.server import EmulatorServer
from laneway.batch import BatchJobInput, ShardRef, SubmitShardRequest
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.artifacts import ArtifactStore
from store.ledger import Ledger, NewJob, upgrade_to_head
from store.ledger.batch_records import BatchRecords
from tests.batch.conftest import (
    classify_template,
    make_batch_job,
    provider_batches,
    records,
    request_lines,
    start_batch,
    write_jsonl,
)
from tests.conftest import WorkerFactory

UPLOADS = "POST /v1/files"
CREATES = "POST /v1/batches"


def _first_create_fails(emulator: EmulatorServer, job: BatchJobInput) -> None:
    """An HTTP 500 for the first batch create of this job: the upload before it went fine."""
    emulator.control.add_fault(
        FaultRule(
            kind=FaultKind.HTTP_500,
            match=FaultMatch(
                method="POST",
                path_regex="^/v1/batches$",
                metadata_key="laneway_job_id",
                metadata_value=job.job_id,
            ),
            times=1,
        )
    )


def _shard_activities(
    settings: Settings, openai_client: AsyncOpenAI, job: BatchJobInput
) -> tuple[BatchProviderActivities, SubmitShardRequest, Ledger]:
    upgrade_to_head(settings.ledger_url)
    ledger = Ledger.from_url(settings.ledger_url)
    store = ArtifactStore(settings.artifacts_path)
    ledger.record_job(NewJob.batch(job.job_id, job.job_id, job.spec))
    activities = BatchProviderActivities(openai_client, ledger, BatchRecords(ledger.engine), store)
    request = SubmitShardRequest(
        job_id=job.job_id,
        shard=ShardRef(round=1, index=0, requests=5, file=job.spec.input, estimated_input_tokens=1),
        endpoint="/v1/responses",
        idempotency_key=f"{job.job_id}/round-1/shard-0/submission-1",
        submission=1,
    )
    return activities, request, ledger


def _try(attempt: int) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    return env


async def test_a_retried_submit_finds_the_lost_create_by_its_metadata(
    settings: Settings, emulator: EmulatorServer, openai_client: AsyncOpenAI, tmp_path: Path
) -> None:
    job = make_batch_job(settings, write_jsonl(tmp_path / "in.jsonl", request_lines(5)))
    activities, request, ledger = _shard_activities(settings, openai_client, job)
    # The first try created the batch but died before the ledger heard of it.
    ledger.record_provider_intent(job.job_id, request.idempotency_key, attempt=1)
    lost = await _try(1).run(activities._create, request)

    retry = _try(2)
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
    assert emulator.control.stats()["requests"][UPLOADS] == 1


async def test_a_retry_after_a_failed_create_reuses_the_uploaded_file(
    settings: Settings, emulator: EmulatorServer, openai_client: AsyncOpenAI, tmp_path: Path
) -> None:
    job = make_batch_job(settings, write_jsonl(tmp_path / "in.jsonl", request_lines(5)))
    activities, request, ledger = _shard_activities(settings, openai_client, job)
    _first_create_fails(emulator, job)

    with pytest.raises(ApplicationError, match="provider error 500"):
        await _try(1).run(activities.submit_batch_shard, request)
    created = await _try(2).run(activities.submit_batch_shard, request)

    stats = emulator.control.stats()
    assert (stats["requests"][UPLOADS], stats["requests"][CREATES]) == (1, 2)
    [file_id] = stats["ids"]["files"]
    batch = await openai_client.batches.retrieve(created.batch_id)
    assert batch.input_file_id == file_id, "the batch reads the file the first try uploaded"
    upload = ledger.get_provider_intent(f"{request.idempotency_key}/file")
    assert upload is not None and (upload.operation, upload.provider_id) == (
        "files.create",
        file_id,
    )
    record = ledger.get_job(job.job_id)
    assert record is not None and record.provider_ids == [created.batch_id], (
        "the job is followed by its batches; the input file is not one of its provider ids"
    )


async def test_an_upload_the_ledger_never_heard_of_is_found_by_its_name(
    settings: Settings, emulator: EmulatorServer, openai_client: AsyncOpenAI, tmp_path: Path
) -> None:
    job = make_batch_job(settings, write_jsonl(tmp_path / "in.jsonl", request_lines(5)))
    activities, request, ledger = _shard_activities(settings, openai_client, job)
    # The first try uploaded the shard and died before writing the file id down.
    ledger.record_provider_intent(job.job_id, f"{request.idempotency_key}/file", attempt=1)
    lost = await _try(1).run(activities._upload, request, "another-key")

    created = await _try(2).run(activities.submit_batch_shard, request)

    assert emulator.control.stats()["requests"][UPLOADS] == 1
    batch = await openai_client.batches.retrieve(created.batch_id)
    assert batch.input_file_id == lost
    upload = ledger.get_provider_intent(f"{request.idempotency_key}/file")
    assert upload is not None and upload.provider_id == lost


async def test_a_batch_job_whose_first_create_fails_uploads_each_shard_once(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(20)),
        template=classify_template(),
        shard_limits={"max_requests": 10},
    )
    _first_create_fails(emulator, job)
    async with laneway_worker(time_skipping_env):
        outcome = await (await start_batch(time_skipping_env, settings, job)).result()

    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    assert outcome.report is not None and outcome.report.records.succeeded == 20
    stats = emulator.control.stats()
    assert stats["requests"][CREATES] == 3, "two shards, and one create retried"
    assert stats["requests"][UPLOADS] == 2, "each shard uploaded once"
    used = {batch.input_file_id for batch in provider_batches(emulator)}
    assert used == set(stats["ids"]["files"])
