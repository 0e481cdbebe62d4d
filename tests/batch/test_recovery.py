"""Recovery: what a round leaves retryable or unanswered is resent, and nothing else is.

These tests read Laneway's own record of each round (the shard child workflows' outcomes and
the provider files they stored, the shard files they sent, the per-record ledger) and check
that the next round is derived from it exactly; `test_rounds.py` checks the same story from
the provider's side.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from openai.types import Batch
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from laneway.background import Actor, ControlRequest
from laneway.batch import BatchJobInput, RecordState, ShardJob, ShardOutcome
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.artifacts import ArtifactStore
from store.ledger import Ledger
from store.ledger.batch_records import BatchRecords, StoredRecord
from tests.batch.conftest import (
    batch_fault,
    classify_template,
    make_batch_job,
    provider_batches,
    read_jsonl,
    records,
    request_lines,
    start_batch,
    wait_until,
    write_jsonl,
)
from tests.conftest import WorkerFactory, batch_outcome
from workflows.batch_job import BatchJobWorkflow

OPERATOR = Actor(id="otto", workspace="acme", roles=frozenset({"operator"}))


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    # 500 requests take 50 emulated seconds (under 0.1 s real); a batch pinned by batch_expire
    # expires at its 600-second window, one real second after it was created.
    return EmulatorConfig(
        speed=600.0, batch_seconds_per_request=0.1, batch_completion_window_seconds=600
    )


# ---- reading what happened -------------------------------------------------------------------


def _rows(settings: Settings, job: BatchJobInput) -> list[StoredRecord]:
    engine = Ledger.from_url(settings.ledger_url).engine
    return list(BatchRecords(engine).records_in_order(job.job_id))


def _in_round(batches: list[Batch], round_: int) -> list[Batch]:
    return [b for b in batches if (b.metadata or {}).get("laneway_round") == str(round_)]


async def _shard_outcome(
    client: Client, job: BatchJobInput, round_: int, shard: int
) -> ShardOutcome:
    handle = client.get_workflow_handle(
        f"{job.job_id}/round-{round_}/shard-{shard}", result_type=ShardOutcome
    )
    outcome: ShardOutcome = await handle.result()
    return outcome


async def _shard_sent(
    client: Client, store: ArtifactStore, job: BatchJobInput, round_: int, shard: int
) -> list[str]:
    """The custom_ids of the shard file a child workflow was given to submit."""
    handle = client.get_workflow_handle(f"{job.job_id}/round-{round_}/shard-{shard}")
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [shard_job] = await client.data_converter.decode(started.input.payloads, [ShardJob])
    assert isinstance(shard_job, ShardJob)
    return [line["custom_id"] for line in read_jsonl(store, shard_job.shard.file)]


def _lines_of(store: ArtifactStore, outcome: ShardOutcome) -> tuple[set[str], list[dict[str, Any]]]:
    """(ids in the stored output file, lines of the stored error file) of one shard."""
    succeeded = (
        {line["custom_id"] for line in read_jsonl(store, outcome.output_file)}
        if outcome.output_file is not None
        else set()
    )
    errors = read_jsonl(store, outcome.error_file) if outcome.error_file is not None else []
    return succeeded, errors


def _retryable(line: dict[str, Any]) -> bool:
    if line.get("error"):
        return bool(line["error"]["code"] == "batch_expired")
    status = int(line["response"]["status_code"])
    return status >= 500 or status in (408, 409, 429)


# ---- the key scenario ------------------------------------------------------------------------

RECORDS = 2000
SHARD = 500
EXPIRING_SHARD = 2
# Requests without an input: the provider refuses them with a 400. None is in the shard that
# expires, and none is hit by the 5% fault (seed 3), so each is answered in round 1.
REFUSED = {f"req-{n}" for n in (7, 107, 257, 407, 557, 707, 857, 1507, 1707, 1907)}


def _lines_with_refusals() -> list[dict[str, Any]]:
    lines = list(request_lines(RECORDS))
    for line in lines:
        if line["custom_id"] in REFUSED:
            del line["body"]["input"]
    return lines


async def test_round_two_holds_exactly_what_round_one_left_retryable_or_never_ran(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", _lines_with_refusals()),
        shard_limits={"max_requests": SHARD},
    )
    round_one = {"metadata_key": "laneway_round", "metadata_value": "1"}
    emulator.control.add_fault(
        batch_fault("batch_fail_fraction", job, fraction=0.05, seed=3, match=round_one)
    )
    expiring = {"metadata_key": "laneway_shard", "metadata_value": str(EXPIRING_SHARD)}
    emulator.control.add_fault(
        batch_fault("batch_expire", job, fraction=0.6, times=1, match=expiring)
    )
    client = time_skipping_env.client
    async with laneway_worker(time_skipping_env):
        outcome = await batch_outcome(await start_batch(time_skipping_env, settings, job))
        store = ArtifactStore(settings.artifacts_path)

        # Round 1, as Laneway recorded it: what each shard sent, and the files it kept.
        all_ids = [f"req-{n}" for n in range(RECORDS)]
        sent_first: list[str] = []
        succeeded_first: set[str] = set()
        refused_first: dict[str, dict[str, Any]] = {}
        retryable_first: set[str] = set()
        final_statuses: dict[int, str] = {}
        for shard in range(RECORDS // SHARD):
            sent_first += await _shard_sent(client, store, job, 1, shard)
            result = await _shard_outcome(client, job, 1, shard)
            final_statuses[shard] = result.final_status
            succeeded, errors = _lines_of(store, result)
            assert result.succeeded == len(succeeded), "a success is a line of the output file"
            succeeded_first |= succeeded
            for line in errors:
                if _retryable(line):
                    retryable_first.add(line["custom_id"])
                else:
                    refused_first[line["custom_id"]] = line
        never_answered = set(sent_first) - succeeded_first - set(refused_first) - retryable_first

        # Round 2, as Laneway planned it: the shard files of its children and the ledger.
        rows = _rows(settings, job)
        second_shards = sorted({r.shard for r in rows if r.round == 2})
        sent_second: list[str] = []
        for shard in second_shards:
            sent_second += await _shard_sent(client, store, job, 2, shard)
            assert (await _shard_outcome(client, job, 2, shard)).final_status == "completed"

    assert sorted(sent_first) == sorted(all_ids), "round 1 sent every record once"
    assert final_statuses == {0: "completed", 1: "completed", 2: "expired", 3: "completed"}
    expired_lines = [cid for cid in retryable_first if int(cid.split("-")[1]) // SHARD == 2]
    assert 150 <= len(expired_lines) <= 260, "about 40% of the expiring shard never ran"
    assert 60 < len(retryable_first) - len(expired_lines) < 140, "about 5% failed with 429/500"
    assert set(refused_first) == REFUSED, "every refusal answered in round 1"

    # Exactly the retryable failures and the never-run records, in input order, once each.
    resend = set(all_ids) - succeeded_first - set(refused_first)
    assert resend == retryable_first | never_answered
    assert len(sent_second) == len(set(sent_second))
    assert sent_second == [cid for cid in all_ids if cid in resend]
    assert {r.custom_id for r in rows if r.round == 2} == resend
    assert not REFUSED & set(sent_second), "a 400 is never resent"

    # After round 2 every resent record succeeded; the refusals stayed in round 1, failed.
    by_id = {r.custom_id: r for r in rows}
    assert all(by_id[cid].state is RecordState.SUCCEEDED for cid in resend)
    for cid in REFUSED:
        row = by_id[cid]
        assert (row.round, row.state, row.retryable) == (1, RecordState.FAILED, False)
        assert row.error_code == "missing_required_parameter"

    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    assert outcome.reason is not None and "10 failed for good" in outcome.reason
    report = outcome.report
    assert report is not None and report.rounds == 2
    assert report.records.total == RECORDS
    assert report.records.succeeded == RECORDS - len(REFUSED)
    assert report.records.permanent_failures == len(REFUSED) and report.records.retryable == 0

    results = read_jsonl(store, report.results)
    errors = read_jsonl(store, report.errors)
    assert Counter(e["custom_id"] for e in [*results, *errors]) == Counter(all_ids)
    assert [r["custom_id"] for r in results] == [c for c in all_ids if c not in REFUSED]
    assert [e["custom_id"] for e in errors] == sorted(REFUSED, key=lambda c: int(c[4:]))
    for entry in errors:
        n = int(entry["custom_id"][4:])
        provider_line = refused_first[entry["custom_id"]]
        assert provider_line["response"]["status_code"] == 400
        assert entry["line"] == n + 1 and entry["round"] == 1
        assert entry["state"] == "failed" and entry["retryable"] is False
        assert entry["code"] == "missing_required_parameter"
        assert entry["message"].startswith("400: ") and "input" in entry["message"]

    provider = provider_batches(emulator)
    assert len(_in_round(provider, 1)) == 4 and len(_in_round(provider, 2)) == len(second_shards)
    assert not _in_round(provider, 3)


# ---- results the provider never wrote ----------------------------------------------------------


async def test_results_left_out_of_the_files_are_missing_then_resent(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    """10% of the lines of shards 0 and 2 and every line of shard 1 never reach the files,
    while the provider counts them all completed: missing, never success, resent once."""
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(300)),
        template=classify_template(),
        shard_limits={"max_requests": 100},
    )
    for shard, fraction in ((0, 0.1), (1, 1.0), (2, 0.1)):
        only = {"metadata_key": "laneway_shard", "metadata_value": str(shard)}
        emulator.control.add_fault(
            batch_fault("batch_omit_results", job, fraction=fraction, times=1, seed=5, match=only)
        )
    client = time_skipping_env.client
    async with laneway_worker(time_skipping_env):
        outcome = await batch_outcome(await start_batch(time_skipping_env, settings, job))
        store = ArtifactStore(settings.artifacts_path)
        missing: set[str] = set()
        first: dict[int, ShardOutcome] = {}
        for shard in range(3):
            first[shard] = result = await _shard_outcome(client, job, 1, shard)
            sent = await _shard_sent(client, store, job, 1, shard)
            succeeded, errors = _lines_of(store, result)
            assert not errors
            assert result.succeeded == len(succeeded) and result.failed == result.missing
            missing |= set(sent) - succeeded
        rows = _rows(settings, job)

    round_one = sorted(
        _in_round(provider_batches(emulator), 1), key=lambda b: (b.metadata or {})["laneway_shard"]
    )
    assert [b.status for b in round_one] == ["completed"] * 3
    assert all(b.request_counts and b.request_counts.completed == 100 for b in round_one)
    assert [b.output_file_id is None for b in round_one] == [False, True, False]

    assert first[1].output_file is None and first[1].missing == 100 and first[1].succeeded == 0
    for shard in (0, 2):
        assert 0 < first[shard].missing < 30, "about a tenth of the lines left out"
        assert first[shard].succeeded + first[shard].missing == 100
    assert len(missing) == sum(o.missing for o in first.values())
    assert {r.custom_id for r in rows if r.round == 2} == missing, "exactly the missing resent"
    assert all(r.state is RecordState.SUCCEEDED for r in rows)

    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    report = outcome.report
    assert report is not None and report.rounds == 2
    assert report.records.succeeded == 300 and report.records.failed == 0
    results = [r["custom_id"] for r in read_jsonl(store, report.results)]
    assert results == [f"rec-{n}" for n in range(300)]
    assert read_jsonl(store, report.errors) == []


# ---- the round budget ------------------------------------------------------------------------


async def test_failures_in_every_round_hold_the_job_failed_for_retry_then_archive(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    """The same records fail with 429/500 in every round: after max_rounds the job is failed
    and open; an operator's retry runs exactly one more round; archive ends it."""
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(200)),
        template=classify_template(),
        max_rounds=2,
    )
    emulator.control.add_fault(batch_fault("batch_fail_fraction", job, fraction=0.1, seed=1))
    async with laneway_worker(time_skipping_env):
        handle = await start_batch(time_skipping_env, settings, job)
        held = await wait_until(handle, lambda v: v.status == ProductStatus.FAILED)
        failing = held.records.retryable
        assert 5 < failing < 40
        assert held.round == 2 and held.records.failed == failing
        assert held.records.succeeded == 200 - failing and held.records.pending == 0
        assert held.reason is not None
        assert held.reason.startswith(f"{failing} records still failing after 2 rounds")
        assert held.allowed_actions == ["retry", "archive"]
        assert len(_in_round(provider_batches(emulator), 3)) == 0, "the budget is respected"

        retried = await handle.execute_update(
            BatchJobWorkflow.retry, ControlRequest(actor=OPERATOR, note="provider had a bad day")
        )
        assert retried.status in (ProductStatus.QUEUED, ProductStatus.RUNNING)
        again = await wait_until(
            handle, lambda v: v.status == ProductStatus.FAILED and v.round == 3
        )
        assert again.records.retryable == failing, "the same records fail again"
        assert again.reason is not None
        assert again.reason.startswith(f"{failing} records still failing after 3 rounds")
        third = _in_round(provider_batches(emulator), 3)
        assert [b.request_counts.total for b in third if b.request_counts] == [failing]
        assert not _in_round(provider_batches(emulator), 4), "one more round, not more"

        archived = await handle.execute_update(
            BatchJobWorkflow.archive, ControlRequest(actor=OPERATOR, note="give up")
        )
        outcome = await batch_outcome(handle)

    assert archived.status == ProductStatus.FAILED and archived.allowed_actions == []
    assert outcome.status == ProductStatus.FAILED
    assert outcome.reason is not None and f"{failing} records still failing" in outcome.reason
    report = outcome.report
    assert report is not None and report.rounds == 3
    assert report.records.succeeded == 200 - failing
    errors = read_jsonl(ArtifactStore(settings.artifacts_path), report.errors)
    assert len(errors) == failing
    assert {e["code"] for e in errors} <= {"rate_limit_exceeded", "server_error"}
    assert all(e["retryable"] and e["round"] == 3 and e["state"] == "failed" for e in errors)
    events = Ledger.from_url(settings.ledger_url).list_events(job.job_id)
    controls = [(e.kind, e.actor, e.note) for e in events if e.kind in ("retried", "archived")]
    assert controls == [
        ("retried", "otto", "provider had a bad day"),
        ("archived", "otto", "give up"),
    ]
    job_record = Ledger.from_url(settings.ledger_url).get_job(job.job_id)
    assert job_record is not None and job_record.status == ProductStatus.FAILED


# ---- the enqueued-token limit ------------------------------------------------------------------


async def test_a_token_limit_refusal_is_resubmitted_under_a_new_key_and_loses_nothing(
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
        job_input={"token_limit_backoff": timedelta(minutes=15)},
    )
    refused = {"metadata_key": "laneway_shard", "metadata_value": "1"}
    emulator.control.add_fault(
        batch_fault("batch_token_limit_exceeded", job, times=1, match=refused)
    )
    client = time_skipping_env.client
    async with laneway_worker(time_skipping_env):
        outcome = await batch_outcome(await start_batch(time_skipping_env, settings, job))
        durations = {}
        for shard in range(3):
            described = await client.get_workflow_handle(
                f"{job.job_id}/round-1/shard-{shard}"
            ).describe()
            assert described.close_time is not None
            durations[shard] = described.close_time - described.start_time

    batches = provider_batches(emulator)
    of_shard = sorted(
        (b for b in batches if (b.metadata or {}).get("laneway_shard") == "1"),
        key=lambda b: (b.metadata or {})["laneway_submission"],
    )
    assert len(batches) == 4 and len(of_shard) == 2, "two batches for the refused shard"
    first, second = of_shard
    assert first.status == "failed" and first.errors is not None and first.errors.data
    assert first.errors.data[0].code == "token_limit_exceeded"
    assert second.status == "completed"
    assert [(b.metadata or {})["laneway_submission"] for b in of_shard] == ["1", "2"]

    ledger = Ledger.from_url(settings.ledger_url)
    key = f"{job.job_id}/round-1/shard-1/submission-"
    intents = [ledger.get_provider_intent(f"{key}{n}") for n in (1, 2, 3)]
    assert [i.provider_id if i else None for i in intents] == [first.id, second.id, None]
    assert ledger.get_provider_intent(f"{job.job_id}/round-1/shard-0/submission-2") is None

    assert durations[1] >= timedelta(minutes=15), "waited the backoff before resubmitting"
    assert durations[0] < timedelta(minutes=15) and durations[2] < timedelta(minutes=15)

    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    report = outcome.report
    assert report is not None and report.rounds == 1 and report.records.succeeded == 300
    store = ArtifactStore(settings.artifacts_path)
    results = [r["custom_id"] for r in read_jsonl(store, report.results)]
    assert results == [f"rec-{n}" for n in range(300)], "every record once, none lost"
    rows = _rows(settings, job)
    assert {r.batch_id for r in rows if r.shard == 1} == {second.id}
    job_record = ledger.get_job(job.job_id)
    assert job_record is not None and {first.id, second.id} <= set(job_record.provider_ids)


# ---- bad input lines set aside -----------------------------------------------------------------


async def test_quarantined_lines_are_reported_beside_provider_failures_in_line_order(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    lines: list[Any] = list(request_lines(40))
    lines[2] = "{broken"
    lines[7] = {**lines[7], "url": "/v1/chat/completions"}
    lines[14] = {**lines[14], "custom_id": "req-0"}
    lines[21]["body"] = {"model": lines[21]["body"]["model"]}  # the provider refuses it
    lines[29] = {**lines[29], "body": {**lines[29]["body"], "model": "gpt-4.1"}}
    job = make_batch_job(
        settings, write_jsonl(tmp_path / "in.jsonl", lines), bad_lines="quarantine"
    )
    async with laneway_worker(time_skipping_env):
        outcome = await batch_outcome(await start_batch(time_skipping_env, settings, job))

    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    assert outcome.reason is not None
    assert "4 input lines quarantined" in outcome.reason and "1 failed for good" in outcome.reason
    report = outcome.report
    assert report is not None and report.quarantined == 4
    assert report.records.total == 36 and report.records.succeeded == 35
    store = ArtifactStore(settings.artifacts_path)
    errors = read_jsonl(store, report.errors)
    assert [(e["line"], e["state"], e["code"]) for e in errors] == [
        (3, "rejected", "invalid_json"),
        (8, "rejected", "endpoint_mismatch"),
        (15, "rejected", "duplicate_custom_id"),
        (22, "failed", "missing_required_parameter"),
        (30, "rejected", "model_mismatch"),
    ]
    assert errors[0]["raw"] == "{broken"
    assert "line 1" in errors[2]["message"], "the duplicate names the line it repeats"
    assert json.loads(errors[4]["raw"])["custom_id"] == "req-29"
    quarantined = {3, 8, 15, 30}
    results = read_jsonl(store, report.results)
    assert [r["line"] for r in results] == [n for n in range(1, 41) if n not in {*quarantined, 22}]
    sent = sum(b.request_counts.total for b in provider_batches(emulator) if b.request_counts)
    assert sent == 36, "quarantined lines never reach the provider"
