"""BatchRecords on every ledger backend: keyed writes that are safe to repeat, ordered reads."""

from __future__ import annotations

import pytest

from laneway.batch import BatchJobSpec, RecordCounts, RecordState
from laneway.jobs import ArtifactRef, Usage
from store.ledger import Ledger, NewJob
from store.ledger.batch_records import CHUNK, BatchRecords, NewRecord, RecordResult

JOB = "job-records"
OTHER_JOB = "job-records-other"
OUTPUT = ArtifactRef(uri="artifact://" + "b" * 64, sha256="b" * 64, size_bytes=100)


def _spec() -> BatchJobSpec:
    ref = ArtifactRef(uri="artifact://" + "a" * 64, sha256="a" * 64, size_bytes=10)
    return BatchJobSpec(job_type="triage", workspace="acme", requested_by="alice", input=ref)


@pytest.fixture
def records(ledger: Ledger) -> BatchRecords:
    for job_id in (JOB, OTHER_JOB):
        ledger.record_job(NewJob.batch(job_id, job_id, _spec()))
    return BatchRecords(ledger.engine)


def new(n: int, shard: int = 0) -> NewRecord:
    return NewRecord(f"r-{n}", n, shard)


def ok(custom_id: str, offset: int = 0, tokens: int = 10) -> RecordResult:
    return RecordResult(
        custom_id=custom_id,
        state=RecordState.SUCCEEDED,
        output_uri=OUTPUT.uri,
        output_offset=offset,
        output_length=42,
        usage=Usage(
            input_tokens=tokens, cached_input_tokens=2, output_tokens=5, reasoning_tokens=1
        ),
    )


def failed(custom_id: str, *, retryable: bool) -> RecordResult:
    code = "server_error" if retryable else "invalid_request"
    return RecordResult(custom_id, RecordState.FAILED, retryable, code, f"{code} happened")


def land(
    records: BatchRecords,
    results: list[RecordResult],
    *,
    round: int = 1,
    shard: int = 0,
    job: str = JOB,
    batch: str = "batch_1",
) -> list[int]:
    return list(records.record_results(job, round, shard, batch, results))


def by_id(records: BatchRecords, job: str = JOB) -> dict[str, tuple[object, ...]]:
    return {
        r.custom_id: (r.round, r.shard, r.state, r.retryable, r.error_code, r.batch_id)
        for r in records.records_in_order(job)
    }


# ---- register ---------------------------------------------------------------------------------


def test_register_yields_per_chunk_and_inserts_each_record_once(records: BatchRecords) -> None:
    progress = list(records.register(JOB, [new(n, n // 2500) for n in range(4500)]))
    assert progress == [CHUNK, 2 * CHUNK, 4500]

    # Registered again (the planning activity retried), even with other shards: nothing moves.
    again = list(records.register(JOB, [new(n, 7) for n in range(0, 4500, 3)]))
    assert again == [1500]
    assert records.counts(JOB) == RecordCounts(total=4500, pending=4500)
    stored = list(records.records_in_order(JOB))
    assert [r.shard for r in stored[2498:2502]] == [0, 0, 1, 1]
    assert all(r.round == 1 and r.state is RecordState.PENDING for r in stored)


def test_register_in_a_later_round_and_for_another_job(records: BatchRecords) -> None:
    list(records.register(JOB, [new(1)], round=3))
    list(records.register(OTHER_JOB, [new(1, shard=4)]))  # the same custom_id, another job
    assert by_id(records) == {"r-1": (3, 0, RecordState.PENDING, False, None, None)}
    assert by_id(records, OTHER_JOB) == {"r-1": (1, 4, RecordState.PENDING, False, None, None)}


# ---- record_results ---------------------------------------------------------------------------


def test_results_land_on_pending_records_of_their_round_and_shard(records: BatchRecords) -> None:
    list(records.register(JOB, [new(n, shard=n % 2) for n in range(6)]))
    list(records.register(OTHER_JOB, [new(n) for n in range(6)]))

    land(
        records,
        [
            ok("r-0", offset=0),
            failed("r-2", retryable=True),
            failed("r-4", retryable=False),
            ok("r-1", offset=99),  # shard 1's record in shard 0's file: ignored
            ok("nobody"),  # no such record: ignored
        ],
    )

    assert by_id(records) == {
        "r-0": (1, 0, RecordState.SUCCEEDED, False, None, "batch_1"),
        "r-1": (1, 1, RecordState.PENDING, False, None, None),
        "r-2": (1, 0, RecordState.FAILED, True, "server_error", "batch_1"),
        "r-3": (1, 1, RecordState.PENDING, False, None, None),
        "r-4": (1, 0, RecordState.FAILED, False, "invalid_request", "batch_1"),
        "r-5": (1, 1, RecordState.PENDING, False, None, None),
    }
    assert records.counts(OTHER_JOB).pending == 6, "the other job's r-0 is untouched"
    first = next(records.records_in_order(JOB))
    assert (first.output_uri, first.output_offset, first.output_length) == (OUTPUT.uri, 0, 42)
    assert first.error_message is None
    failure = next(r for r in records.records_in_order(JOB) if r.custom_id == "r-2")
    assert failure.error_message == "server_error happened" and failure.output_uri is None


def test_a_second_ingest_of_the_same_lines_changes_nothing(records: BatchRecords) -> None:
    list(records.register(JOB, [new(n) for n in range(3000)]))
    lines = [ok(f"r-{n}", offset=n * 10) for n in range(0, 3000, 2)]
    lines += [failed(f"r-{n}", retryable=True) for n in range(1, 3000, 4)]
    assert land(records, lines) == [CHUNK, len(lines)]
    before = list(records.records_in_order(JOB))
    usage = records.usage(JOB)

    land(records, lines)  # the ingest activity retried after a crash
    land(records, [failed(f"r-{n}", retryable=False) for n in range(3000)], batch="batch_2")

    after = list(records.records_in_order(JOB))
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    # only the records that were still pending took the late permanent failures
    assert {a.custom_id for _b, a in changed} == {f"r-{n}" for n in range(3, 3000, 4)}
    assert all(a.batch_id == "batch_2" and not a.retryable for _b, a in changed)
    assert (
        records.usage(JOB)
        == usage
        == Usage(
            input_tokens=15_000, cached_input_tokens=3000, output_tokens=7500, reasoning_tokens=1500
        )
    )


def test_a_result_for_another_round_is_ignored(records: BatchRecords) -> None:
    list(records.register(JOB, [new(1), new(2)]))
    land(records, [failed("r-1", retryable=True), failed("r-2", retryable=True)])
    list(records.move_to_round(JOB, 2, [("r-1", 0)]))

    land(records, [ok("r-1"), ok("r-2")], round=1)  # a late round-1 ingest
    assert by_id(records)["r-1"][:3] == (2, 0, RecordState.PENDING)
    assert by_id(records)["r-2"][:3] == (1, 0, RecordState.FAILED)

    land(records, [ok("r-1"), ok("r-2")], round=2, batch="batch_r2")
    assert by_id(records)["r-1"] == (2, 0, RecordState.SUCCEEDED, False, None, "batch_r2")
    assert by_id(records)["r-2"][:3] == (1, 0, RecordState.FAILED)


# ---- fail_pending -----------------------------------------------------------------------------


def test_fail_pending_closes_only_the_shards_pending_records(records: BatchRecords) -> None:
    list(records.register(JOB, [new(n, shard=n // 5) for n in range(10)]))
    land(records, [ok("r-0"), failed("r-1", retryable=False)])

    def close() -> int:
        return records.fail_pending(
            JOB,
            1,
            0,
            state=RecordState.MISSING,
            retryable=True,
            code="missing_result",
            message="the batch ended completed without a result for this record",
            batch_id="batch_1",
        )

    assert close() == 3
    assert close() == 0  # repeated: nothing pending any more
    after = by_id(records)
    assert after["r-0"][2] is RecordState.SUCCEEDED and after["r-1"][2] is RecordState.FAILED
    assert [after[f"r-{n}"] for n in (2, 3, 4)] == [
        (1, 0, RecordState.MISSING, True, "missing_result", "batch_1")
    ] * 3
    assert all(after[f"r-{n}"][2] is RecordState.PENDING for n in range(5, 10))
    assert records.count_state(JOB, 1, 0, RecordState.MISSING) == 3
    assert records.count_state(JOB, 1, 1, RecordState.MISSING) == 0

    failed_whole = records.fail_pending(
        JOB,
        1,
        1,
        state=RecordState.FAILED,
        retryable=False,
        code="batch_failed",
        message="the input file failed validation",
        batch_id=None,
    )
    assert failed_whole == 5
    assert by_id(records)["r-7"] == (1, 1, RecordState.FAILED, False, "batch_failed", None)


# ---- counts and usage -------------------------------------------------------------------------


def test_counts_and_usage_per_job_round_and_shard(records: BatchRecords) -> None:
    list(records.register(JOB, [new(n, shard=n // 4) for n in range(12)]))
    list(records.register(OTHER_JOB, [new(n) for n in range(3)]))
    land(records, [ok("r-0", tokens=100), ok("r-1", tokens=3), failed("r-2", retryable=True)])
    land(records, [failed("r-4", retryable=False), ok("r-5", tokens=7)], shard=1)
    records.fail_pending(
        JOB,
        1,
        1,
        state=RecordState.MISSING,
        retryable=True,
        code="missing_result",
        message="-",
        batch_id=None,
    )
    land(records, [ok("r-0", tokens=1000)], job=OTHER_JOB)

    total = records.counts(JOB)
    assert total == RecordCounts(total=12, succeeded=3, failed=4, retryable=3, pending=5)
    assert total.permanent_failures == 1
    assert records.counts(JOB, shard=0) == RecordCounts(
        total=4, succeeded=2, failed=1, retryable=1, pending=1
    )
    assert records.counts(JOB, round=1, shard=1) == RecordCounts(
        total=4, succeeded=1, failed=3, retryable=2, pending=0
    )
    assert records.counts(JOB, round=2) == RecordCounts()
    assert records.counts("no-such-job") == RecordCounts()

    assert records.usage(JOB) == Usage(
        input_tokens=110, cached_input_tokens=6, output_tokens=15, reasoning_tokens=3
    )
    assert records.usage(JOB, round=1, shard=1).input_tokens == 7
    assert records.usage(JOB, shard=2) == Usage()
    assert records.usage(OTHER_JOB).input_tokens == 1000


# ---- ordered reads ----------------------------------------------------------------------------


def test_records_come_in_input_order_whatever_their_ids_and_registration(
    records: BatchRecords,
) -> None:
    # ids sort differently from lines (z.. first, "10" before "9"), registered in reverse.
    entries = [NewRecord(f"{'z' if n % 2 else 'a'}-{9999 - n}", n, n % 3) for n in range(4500)]
    list(records.register(JOB, reversed(entries)))
    list(records.register(OTHER_JOB, [NewRecord("a-first", 0, 0)]))

    stored = list(records.records_in_order(JOB))
    assert [(r.custom_id, r.line_no, r.shard) for r in stored] == [
        (e.custom_id, e.line_no, e.shard) for e in entries
    ]


def test_retry_candidates_are_the_retryable_records_in_input_order(
    records: BatchRecords,
) -> None:
    list(records.register(JOB, [new(n, shard=n % 2) for n in range(1, 21)]))
    list(records.register(OTHER_JOB, [new(n) for n in range(1, 4)]))
    land(records, [ok(f"r-{n}") for n in (2, 4, 6)])
    land(records, [failed("r-8", retryable=False), failed("r-10", retryable=True)])
    land(records, [failed("r-3", retryable=True)], shard=1)
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
    land(records, [failed("r-1", retryable=True)], job=OTHER_JOB)

    wanted = [n for n in range(1, 21) if n not in (2, 4, 6, 8)]
    candidates = list(records.retry_candidates(JOB, 2))
    assert candidates == [(n, f"r-{n}") for n in wanted]

    # Part of the move happened before a crash: the repeated step sees the same records.
    list(records.move_to_round(JOB, 2, [("r-1", 1), ("r-3", 1)]))
    assert list(records.retry_candidates(JOB, 2)) == candidates
    assert list(records.move_to_round(JOB, 2, [(f"r-{n}", 1) for n in wanted])) == [16]
    assert list(records.retry_candidates(JOB, 2)) == candidates
    moved = by_id(records)
    assert moved["r-1"][:4] == (2, 1, RecordState.PENDING, False) and moved["r-1"][5] is None
    assert moved["r-8"] == (1, 0, RecordState.FAILED, False, "invalid_request", "batch_1")
    assert records.counts(JOB, round=2) == RecordCounts(total=16, pending=16)
    assert list(records.retry_candidates(JOB, 3)) == []
    assert list(records.retry_candidates(OTHER_JOB, 2)) == [(1, "r-1")]


def test_move_to_round_takes_only_records_of_the_round_before(records: BatchRecords) -> None:
    list(records.register(JOB, [new(1), new(2)]))
    land(records, [failed("r-1", retryable=True), failed("r-2", retryable=True)])
    list(records.move_to_round(JOB, 3, [("r-1", 5)]))  # r-1 is in round 1, not round 2
    list(records.move_to_round(JOB, 2, [("r-2", 5), ("nobody", 0)]))
    assert by_id(records)["r-1"][:3] == (1, 0, RecordState.FAILED)
    assert by_id(records)["r-2"][:4] == (2, 5, RecordState.PENDING, False)
    assert records.counts(JOB).total == 2
