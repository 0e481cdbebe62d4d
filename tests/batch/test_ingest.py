"""Ingest: every result line lands on its record once; anything else is counted, never lost."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from openai import AsyncOpenAI

from activities.batches import BatchProviderActivities
from laneway.batch import BatchSnapshot, IngestRequest, RecordState, ShardRef
from laneway.jobs import ArtifactRef
from laneway.settings import Settings
from store.artifacts import ArtifactStore
from store.ledger import Ledger, NewJob, upgrade_to_head
from store.ledger.batch_records import BatchRecords, NewRecord
from tests.batch.conftest import make_batch_job, request_lines, write_jsonl


def _line(custom_id: str, status: int, body: Mapping[str, object]) -> str:
    response = {"status_code": status, "request_id": "req_1", "body": body}
    return json.dumps({"id": "batch_req_1", "custom_id": custom_id, "response": response})


def test_odd_lines_are_counted_and_unanswered_records_missing(
    settings: Settings, tmp_path: Path
) -> None:
    upgrade_to_head(settings.ledger_url)
    ledger = Ledger.from_url(settings.ledger_url)
    store = ArtifactStore(settings.artifacts_path)
    job = make_batch_job(settings, write_jsonl(tmp_path / "in.jsonl", request_lines(5)))
    ledger.record_job(NewJob.batch(job.job_id, job.job_id, job.spec))
    records = BatchRecords(ledger.engine)
    list(records.register(job.job_id, [NewRecord(f"req-{n}", n + 1, 0) for n in range(5)]))
    usage = {"input_tokens": 10, "output_tokens": 4, "output_tokens_details": {}}
    good = {"object": "response", "usage": usage}
    output = store.put_bytes(
        "\n".join(
            [
                _line("req-0", 200, good),
                _line("req-1", 200, good),
                _line("someone-else", 200, good),  # not a record of this shard
                "{not json",
                _line("req-0", 200, good),  # the same record twice
            ]
        ).encode()
    )
    rate_limited = {
        "error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}
    }
    errors = store.put_bytes(_line("req-2", 429, rate_limited).encode() + b"\n")
    activities = BatchProviderActivities(AsyncOpenAI(api_key="unused"), ledger, records, store)
    batch = BatchSnapshot(batch_id="batch_1", status="completed", total=5, completed=4, failed=1)
    request = IngestRequest(job_id=job.job_id, shard=_shard(job.spec.input), batch=batch)

    outcome = activities._ingest(request, output, errors)
    again = activities._ingest(request, output, errors)  # an activity retry after a crash

    assert (outcome.succeeded, outcome.failed, outcome.missing) == (2, 3, 2)
    assert outcome.unexpected == 3, "the stranger, the unreadable line and the repeat"
    assert again == outcome
    assert outcome.usage.input_tokens == 20
    by_id = {r.custom_id: r for r in records.records_in_order(job.job_id)}
    assert by_id["req-2"].state is RecordState.FAILED and by_id["req-2"].retryable
    assert by_id["req-2"].error_code == "rate_limit_exceeded"
    assert {by_id["req-3"].state, by_id["req-4"].state} == {RecordState.MISSING}
    assert by_id["req-3"].error_code == "missing_result" and by_id["req-3"].retryable
    first = by_id["req-0"]
    assert first.output_offset == 0 and first.output_length is not None
    with store.open(output) as handle:
        handle.seek(first.output_offset)
        assert json.loads(handle.read(first.output_length))["custom_id"] == "req-0"


def _shard(input_ref: ArtifactRef) -> ShardRef:
    return ShardRef(round=1, index=0, requests=5, file=input_ref, estimated_input_tokens=5)
