"""Per-record state of batch jobs (BatchRecords) on every ledger backend."""

from __future__ import annotations

import pytest

from laneway.batch import BatchJobSpec, RecordState
from laneway.jobs import ArtifactRef, Usage
from store.ledger import Ledger, NewJob
from store.ledger.batch_records import BatchRecords, NewRecord, RecordResult

JOB = "batch-job-1"
INPUT = ArtifactRef(uri="artifact://" + "a" * 64, sha256="a" * 64, size_bytes=10)


@pytest.fixture
def records(ledger: Ledger) -> BatchRecords:
    spec = BatchJobSpec(job_type="triage", workspace="acme", requested_by="alice", input=INPUT)
    ledger.record_job(NewJob.batch(JOB, JOB, spec))
    store = BatchRecords(ledger.engine)
    # 5,000 records in two shards, registered out of line order.
    new = [NewRecord(f"id-{n}", n, 0 if n < 2500 else 1) for n in reversed(range(5000))]
    list(store.register(JOB, new))
    return store


def ok(custom_id: str, tokens: int = 10) -> RecordResult:
    return RecordResult(
        custom_id=custom_id,
        state=RecordState.SUCCEEDED,
        output_uri=INPUT.uri,
        output_offset=7,
        output_length=3,
        usage=Usage(input_tokens=tokens, output_tokens=2),
    )


def failed(custom_id: str, *, retryable: bool) -> RecordResult:
    code = "rate_limit_exceeded" if retryable else "invalid_request"
    return RecordResult(custom_id, RecordState.FAILED, retryable, code, "429: slow down")


def test_registering_twice_adds_nothing(records: BatchRecords) -> None:
    list(records.register(JOB, [NewRecord("id-1", 1, 0), NewRecord("id-new", 9999, 1)]))
    counts = records.counts(JOB)
    assert counts.total == 5001 and counts.pending == 5001
    assert [r.custom_id for r in records.records_in_order(JOB)][:3] == ["id-0", "id-1", "id-2"]
    assert next(r for r in records.records_in_order(JOB) if r.custom_id == "id-1").shard == 0


def test_results_land_once_on_pending_records_of_their_shard(records: BatchRecords) -> None:
    lines = [ok(f"id-{n}") for n in range(2400)] + [failed("id-2400", retryable=True)]
    lines.append(ok("id-3000"))  # shard 1's record, reported in shard 0's files: ignored
    list(records.record_results(JOB, 1, 0, "batch_a", lines))
    again = [failed(f"id-{n}", retryable=False) for n in range(10)]  # a repeated ingest
    list(records.record_results(JOB, 1, 0, "batch_a", again))

    shard0 = records.counts(JOB, round=1, shard=0)
    assert (shard0.succeeded, shard0.failed, shard0.retryable, shard0.pending) == (2400, 1, 1, 99)
    assert records.counts(JOB, round=1, shard=1).pending == 2500
    assert records.usage(JOB) == Usage(input_tokens=24_000, output_tokens=4800)

    missing = records.fail_pending(
        JOB,
        1,
        0,
        state=RecordState.MISSING,
        retryable=True,
        code="missing_result",
        message="no result",
        batch_id="batch_a",
    )
    assert missing == 99
    assert records.count_state(JOB, 1, 0, RecordState.MISSING) == 99
    first = next(records.records_in_order(JOB))
    assert (first.state, first.output_offset, first.batch_id) == (
        RecordState.SUCCEEDED,
        7,
        "batch_a",
    )


def test_a_retry_round_takes_exactly_the_retryable_records_in_input_order(
    records: BatchRecords,
) -> None:
    list(records.record_results(JOB, 1, 0, "b0", [ok(f"id-{n}") for n in range(0, 2500, 2)]))
    list(records.record_results(JOB, 1, 0, "b0", [failed("id-1", retryable=False)]))
    list(records.record_results(JOB, 1, 1, "b1", [failed("id-4999", retryable=True)]))
    for shard in (0, 1):
        records.fail_pending(
            JOB,
            1,
            shard,
            state=RecordState.MISSING,
            retryable=True,
            code="missing_result",
            message="-",
            batch_id=None,
        )
    candidates = list(records.retry_candidates(JOB, 2))
    assert candidates[0] == (3, "id-3") and candidates[-1] == (4999, "id-4999")
    assert len(candidates) == 1249 + 2500  # odd lines of shard 0 but id-1, all of shard 1
    assert [line for line, _ in candidates] == sorted(line for line, _ in candidates)

    moved = [(custom_id, n // 2000) for n, (_line, custom_id) in enumerate(candidates)]
    list(records.move_to_round(JOB, 2, moved[:1000]))
    # The planning step is repeated after a crash: it finds the same records again.
    assert list(records.retry_candidates(JOB, 2)) == candidates
    list(records.move_to_round(JOB, 2, moved))
    counts = records.counts(JOB, round=2)
    assert counts.total == counts.pending == len(candidates)
    assert records.counts(JOB, round=1).failed == 1  # the 400 stays where it was


def test_reads_do_not_hold_the_write_lock(records: BatchRecords) -> None:
    """A long read (results being joined) and a write (another job's ingest) interleave."""
    reading = records.records_in_order(JOB)
    next(reading)
    list(records.record_results(JOB, 1, 0, "b0", [ok("id-5")]))
    assert sum(1 for _ in reading) == 4999
