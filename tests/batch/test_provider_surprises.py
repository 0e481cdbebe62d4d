"""What the provider does to batches that today's tools get wrong, and bad lines set aside."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from emulator.server import EmulatorServer
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.artifacts import ArtifactStore
from tests.batch.conftest import (
    batch_fault,
    classify_template,
    make_batch_job,
    provider_batch_dicts,
    read_jsonl,
    records,
    start_batch,
    write_jsonl,
)
from tests.conftest import WorkerFactory, batch_outcome


async def test_a_batch_refused_for_the_token_limit_is_submitted_again_later(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(100)),
        template=classify_template(),
        job_input={"token_limit_backoff": timedelta(minutes=20)},
    )
    emulator.control.add_fault(batch_fault("batch_token_limit_exceeded", job, times=1))
    async with laneway_worker(time_skipping_env):
        handle = await start_batch(time_skipping_env, settings, job)
        started = await time_skipping_env.get_current_time()
        outcome = await batch_outcome(handle)
        took = await time_skipping_env.get_current_time() - started

    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    assert outcome.report is not None and outcome.report.records.succeeded == 100
    assert outcome.report.rounds == 1, "resubmitted within the round, not as a retry round"
    batches = sorted(provider_batch_dicts(emulator), key=lambda b: str(b["metadata"]))
    assert [b["status"] for b in batches] == ["failed", "completed"]
    assert [b["metadata"]["laneway_submission"] for b in batches] == ["1", "2"]
    assert took >= timedelta(minutes=20), "waited the backoff before submitting again"


async def test_a_completed_batch_without_an_output_file_counts_its_records_missing(
    time_skipping_env: WorkflowEnvironment,
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
    )
    lost = {"metadata_key": "laneway_shard", "metadata_value": "1"}
    emulator.control.add_fault(
        batch_fault("batch_omit_results", job, fraction=1.0, times=1, match=lost)
    )
    async with laneway_worker(time_skipping_env):
        outcome = await batch_outcome(await start_batch(time_skipping_env, settings, job))

    empty = [
        b
        for b in provider_batch_dicts(emulator)
        if b["status"] == "completed" and not b["output_file_id"]
    ]
    assert len(empty) == 1, "the provider called the batch completed and gave no output file"
    assert empty[0]["request_counts"]["completed"] == 100
    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    assert outcome.report is not None and outcome.report.rounds == 2
    assert outcome.report.records.succeeded == 300
    second_round = [
        b for b in provider_batch_dicts(emulator) if b["metadata"]["laneway_round"] == "2"
    ]
    assert [b["request_counts"]["total"] for b in second_round] == [100]


async def test_quarantine_sets_bad_lines_aside_and_runs_the_rest(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    lines = [json.dumps(r) for r in records(100)]
    lines[4] = "{broken"
    lines[9] = json.dumps({"id": "rec-3", "title": "a duplicate id"})
    lines[19] = json.dumps({"id": "rec-19"})  # no title for the template
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", lines),
        template=classify_template(),
        bad_lines="quarantine",
    )
    async with laneway_worker(time_skipping_env):
        outcome = await batch_outcome(await start_batch(time_skipping_env, settings, job))

    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    assert "3 input lines quarantined" in (outcome.reason or "")
    report = outcome.report
    assert report is not None and report.quarantined == 3 and report.records.total == 97
    errors = read_jsonl(ArtifactStore(settings.artifacts_path), report.errors)
    assert [(e["line"], e["state"], e["code"]) for e in errors] == [
        (5, "rejected", "invalid_json"),
        (10, "rejected", "duplicate_custom_id"),
        (20, "rejected", "missing_field"),
    ]
    assert errors[0]["raw"] == "{broken"
    assert emulator.control.stats()["counts"]["batches"] == 1
