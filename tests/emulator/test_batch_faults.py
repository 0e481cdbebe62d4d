"""Batch faults: fail a fraction, token limit, injected validation failure, expire, stick."""

from __future__ import annotations

from openai import OpenAI

from emulator.faults import FaultKind, FaultMatch, FaultRule
from emulator.server import EmulatorServer
from tests.emulator.conftest import StartEmulator, sdk
from tests.emulator.helpers import (
    DAY,
    FINALIZING,
    PER_REQUEST,
    VALIDATING,
    by_custom_id,
    chat_line,
    read_jsonl,
    start_batch,
)


def _rule(kind: FaultKind, **fields: object) -> FaultRule:
    return FaultRule.model_validate({"kind": kind, **fields})


def test_fail_fraction_puts_http_errors_in_the_error_file(
    frozen: EmulatorServer, client: OpenAI
) -> None:
    frozen.control.add_fault(_rule(FaultKind.BATCH_FAIL_FRACTION, fraction=0.3))
    batch = start_batch(client, [chat_line(i) for i in range(200)])
    frozen.control.advance_clock(DAY / 2)

    batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.request_counts is not None
    failed = by_custom_id(read_jsonl(client, batch.error_file_id))
    done = by_custom_id(read_jsonl(client, batch.output_file_id))
    assert (
        len(failed) == batch.request_counts.failed and len(done) == batch.request_counts.completed
    )
    assert 30 <= len(failed) <= 90 and not set(failed) & set(done)
    statuses = {row["response"]["status_code"] for row in failed.values()}
    assert statuses == {429, 500}
    for row in failed.values():
        assert row["error"] is None
        error = row["response"]["body"]["error"]
        code = "rate_limit_exceeded" if row["response"]["status_code"] == 429 else "server_error"
        assert error["code"] == code and set(error) == {"message", "type", "param", "code"}


def test_fail_fraction_is_deterministic_per_custom_id(start_emulator: StartEmulator) -> None:
    failed_sets = []
    for _ in range(2):
        server = start_emulator()
        client = sdk(server)
        server.control.add_fault(
            _rule(FaultKind.BATCH_FAIL_FRACTION, fraction=0.5, status_code=500)
        )
        batch = start_batch(client, [chat_line(i) for i in range(50)])
        server.control.advance_clock(DAY / 2)
        batch = client.batches.retrieve(batch.id)
        failed_sets.append(set(by_custom_id(read_jsonl(client, batch.error_file_id))))
    assert failed_sets[0] == failed_sets[1] and failed_sets[0]


def test_token_limit_exceeded_fails_the_batch(frozen: EmulatorServer, client: OpenAI) -> None:
    frozen.control.add_fault(
        _rule(FaultKind.BATCH_TOKEN_LIMIT_EXCEEDED, match=FaultMatch(model="gpt-4o-mini"), times=1)
    )
    first = start_batch(client, [chat_line(i) for i in range(5)])
    frozen.control.advance_clock(VALIDATING)
    second = start_batch(client, [chat_line(i) for i in range(5)])
    frozen.control.advance_clock(VALIDATING)

    first = client.batches.retrieve(first.id)
    assert first.status == "failed" and first.errors is not None and first.errors.data
    error = first.errors.data[0]
    assert error.code == "token_limit_exceeded" and error.line is None
    assert "gpt-4o-mini" in (error.message or "")
    assert client.batches.retrieve(second.id).status in ("in_progress", "finalizing")  # times=1


def test_injected_validation_failure(frozen: EmulatorServer, client: OpenAI) -> None:
    rule = _rule(FaultKind.BATCH_VALIDATION_FAILED, match=FaultMatch(metadata_key="suite"))
    frozen.control.add_fault(rule)
    tagged = start_batch(client, [chat_line(0)], metadata={"suite": "faults"})
    plain = start_batch(client, [chat_line(0)])
    frozen.control.advance_clock(VALIDATING)
    tagged = client.batches.retrieve(tagged.id)
    assert tagged.status == "failed" and tagged.errors is not None and tagged.errors.data
    assert tagged.errors.data[0].line == 1
    assert client.batches.retrieve(plain.id).status in ("in_progress", "finalizing")


def test_expire_fault_stalls_then_expires_with_partial_output(
    frozen: EmulatorServer, client: OpenAI
) -> None:
    batch = start_batch(client, [chat_line(i) for i in range(40)])
    frozen.control.add_fault(
        _rule(FaultKind.BATCH_EXPIRE, match=FaultMatch(object_id=batch.id), fraction=0.25)
    )
    frozen.control.advance_clock(VALIDATING + 100 * PER_REQUEST)
    stalled = client.batches.retrieve(batch.id)
    assert stalled.status == "in_progress" and stalled.request_counts is not None
    assert stalled.request_counts.completed == 10

    frozen.control.advance_clock(DAY)
    expired = client.batches.retrieve(batch.id)
    assert expired.status == "expired" and expired.expired_at == expired.expires_at
    assert len(read_jsonl(client, expired.output_file_id)) == 10
    rows = read_jsonl(client, expired.error_file_id)
    assert len(rows) == 30 and {r["error"]["code"] for r in rows} == {"batch_expired"}


def test_stick_in_finalizing_until_cancelled(frozen: EmulatorServer, client: OpenAI) -> None:
    frozen.control.add_fault(_rule(FaultKind.BATCH_STICK_FINALIZING))
    batch = start_batch(client, [chat_line(i) for i in range(10)])
    frozen.control.advance_clock(VALIDATING + 10 * PER_REQUEST + FINALIZING * 100)
    stuck = client.batches.retrieve(batch.id)
    assert stuck.status == "finalizing" and stuck.completed_at is None

    client.batches.cancel(batch.id)
    frozen.control.advance_clock(3600)
    cancelled = client.batches.retrieve(batch.id)
    assert cancelled.status == "cancelled"
    assert len(read_jsonl(client, cancelled.output_file_id)) == 10
