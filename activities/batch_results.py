"""A batch job's results: joined back onto the input in input order, its errors, its report.

The ledger's records are read in input order beside the original input (both sorted by line
number) and each succeeded record's output is read from the stored output file at the byte
range ingest recorded, so the join runs in constant memory for any number of records.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, BinaryIO

from activities.batch_input import JSONL, cost_if_known, read_lines
from laneway.batch import (
    BatchJobSpec,
    BatchReport,
    BuildResultsRequest,
    InputFormat,
    RecordState,
)
from laneway.jobs import ArtifactRef
from laneway.pricing import COST_QUANTUM, plain_usd
from store.artifacts import ArtifactStore, ArtifactWriter
from store.ledger.batch_records import BatchRecords, StoredRecord


class _Outputs:
    """Open stored output files, read at byte ranges."""

    def __init__(self, store: ArtifactStore) -> None:
        self._store = store
        self._open: dict[str, BinaryIO] = {}

    def read(self, record: StoredRecord) -> Any:
        assert record.output_uri is not None and record.output_offset is not None
        handle = self._open.get(record.output_uri)
        if handle is None:
            sha256 = record.output_uri.removeprefix("artifact://")
            ref = ArtifactRef(uri=record.output_uri, sha256=sha256, size_bytes=0)
            handle = self._open[record.output_uri] = self._store.open(ref)
        handle.seek(record.output_offset)
        line = json.loads(handle.read(record.output_length or 0))
        return (line.get("response") or {}).get("body")

    def close(self) -> None:
        for handle in self._open.values():
            handle.close()


def _input_records(store: ArtifactStore, spec: BatchJobSpec) -> Iterator[tuple[int, Any]]:
    """(line number, record) of the original input, for joining plain records back on."""
    with store.open(spec.input) as handle:
        for number, raw, _size in read_lines(handle, spec.max_line_bytes):
            if raw is not None and raw.strip():
                try:
                    yield number, json.loads(raw)
                except ValueError:
                    continue  # a rejected line; it is in the errors file


def _dump(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _error_entries(
    store: ArtifactStore, records: BatchRecords, job_id: str, quarantine: ArtifactRef | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    def unresolved() -> Iterator[tuple[int, dict[str, Any]]]:
        for record in records.records_in_order(job_id):
            if record.state is not RecordState.SUCCEEDED:
                yield (
                    record.line_no,
                    {
                        "line": record.line_no,
                        "custom_id": record.custom_id,
                        "state": record.state.value,
                        "code": record.error_code,
                        "message": record.error_message,
                        "retryable": record.retryable,
                        "round": record.round,
                        "batch_id": record.batch_id,
                    },
                )

    def rejected() -> Iterator[tuple[int, dict[str, Any]]]:
        if quarantine is None:
            return
        with store.open(quarantine) as handle:
            for raw in handle:
                entry = json.loads(raw)
                yield entry["line"], {"state": "rejected", **entry}

    return heapq.merge(unresolved(), rejected(), key=lambda pair: pair[0])


def _write_results(
    store: ArtifactStore,
    records: BatchRecords,
    request: BuildResultsRequest,
    out: ArtifactWriter,
) -> None:
    spec = request.spec
    outputs = _Outputs(store)
    inputs = _input_records(store, spec) if spec.input_format is InputFormat.RECORDS else None
    current: tuple[int, Any] | None = None
    try:
        for record in records.records_in_order(request.job_id):
            if record.state is not RecordState.SUCCEEDED:
                continue
            entry: dict[str, Any] = {"custom_id": record.custom_id, "line": record.line_no}
            if inputs is not None:
                while current is None or current[0] < record.line_no:
                    current = next(inputs)
                entry["record"] = current[1]
            entry["response"] = outputs.read(record)
            out.write(_dump(entry))
    finally:
        outputs.close()


def build_results(
    store: ArtifactStore, records: BatchRecords, request: BuildResultsRequest
) -> BatchReport:
    job_id, validation = request.job_id, request.validation
    with store.writer(JSONL) as results_out:
        _write_results(store, records, request, results_out)
    with store.writer(JSONL) as errors_out:
        for _line, entry in _error_entries(store, records, job_id, validation.quarantine):
            errors_out.write(_dump(entry))
    counts = records.counts(job_id)
    usage = records.usage(job_id)
    cost_batch = cost_if_known(usage, validation.model, "batch")
    fields: dict[str, Any] = {
        "records": counts,
        "quarantined": validation.rejected if validation.quarantine else 0,
        "rounds": request.rounds,
        "results": results_out.ref,
        "errors": errors_out.ref,
        "usage": usage,
        "model": validation.model,
        "cost_batch_usd": cost_batch,
        "cost_standard_usd": cost_if_known(usage, validation.model, "standard"),
        "cost_per_succeeded_record_usd": _per(cost_batch, counts.succeeded),
    }
    document = {
        "job_id": job_id,
        **{
            k: v.model_dump(mode="json") if hasattr(v, "model_dump") else v
            for k, v in fields.items()
        },
        "cost_per_accepted_record_usd": _per(cost_batch, validation.accepted),
        "estimate": request.estimate.model_dump(mode="json") if request.estimate else None,
        "first_rejected_lines": [e.model_dump() for e in validation.first_errors],
    }
    report = store.put_bytes(
        json.dumps(document, indent=2, default=_json_value).encode(), "application/json"
    )
    return BatchReport(**fields, report=report)


def _json_value(value: object) -> str:
    """What `json` cannot write itself: amounts as plain decimals (`0`, not `0E-10`)."""
    return plain_usd(value) if isinstance(value, Decimal) else str(value)


def _per(total: Decimal | None, count: int) -> Decimal | None:
    if total is None or count == 0:
        return None
    return (total / count).quantize(COST_QUANTUM)
