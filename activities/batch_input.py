"""A batch job's input, from the uploaded JSONL to provider-sized shards, before any provider call.

`validate_input` reads the input once, line by line (a line longer than the limit is never
held in memory), checks each line, and writes the accepted requests in a prepared form: one
line each, `line_no, estimated tokens, embedding inputs, custom_id, request JSON` separated by
tabs, so planning never parses JSON again. custom_ids are checked for uniqueness in a temporary
on-disk SQLite table, so memory stays flat whatever the input size.

`plan_first_round` cuts the prepared requests into shards within the provider's limits and
registers every record in the ledger; `plan_retry_round` does the same for the records a
round left retryable, read in input order from the ledger beside the prepared file.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

from laneway.batch import (
    BATCH_ENDPOINTS,
    MAX_EMBEDDING_INPUTS_PER_BATCH,
    MAX_REPORTED_LINE_ERRORS,
    MAX_SHARDS_PER_ROUND,
    BadLinePolicy,
    BatchJobSpec,
    Estimate,
    InputFormat,
    LineError,
    RequestTemplate,
    RoundPlan,
    ShardRef,
    ValidationReport,
)
from laneway.jobs import Usage
from laneway.pricing import UnknownModelPrice, cost
from store.artifacts import ArtifactStore, ArtifactWriter
from store.ledger.batch_records import BatchRecords, NewRecord

JSONL = "application/jsonl"
READ_CHUNK = 1024 * 1024
CHARS_PER_TOKEN = 4  # a rough, documented estimate: no tokenizer data is available offline
MAX_CUSTOM_ID_CHARS = 512


class LineProblem(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PlanTooLarge(ValueError):
    """More shards than one job may hold; the message says how to split the input."""


# ---- reading lines ------------------------------------------------------------------------


def read_lines(handle: BinaryIO, limit: int) -> Iterator[tuple[int, bytes | None, int]]:
    """(1-based number, line without its newline or None if over `limit` bytes, size)."""
    number = 0
    while raw := handle.readline(limit + 1):
        number += 1
        if len(raw) > limit and not raw.endswith(b"\n"):
            size = len(raw)
            while raw and not raw.endswith(b"\n"):  # skip the rest in bounded pieces
                raw = handle.readline(READ_CHUNK)
                size += len(raw)
            yield number, None, size
        else:
            yield number, raw.rstrip(b"\r\n"), len(raw)


# ---- the prepared form ----------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedLine:
    line_no: int
    input_tokens: int
    output_tokens: int
    embedding_inputs: int
    custom_id: str
    request: bytes  # the batch line exactly as it is sent

    def encode(self) -> bytes:
        head = (
            f"{self.line_no}\t{self.input_tokens}\t{self.output_tokens}\t"
            f"{self.embedding_inputs}\t{json.dumps(self.custom_id)}\t"
        )
        return head.encode() + self.request + b"\n"

    @classmethod
    def decode(cls, raw: bytes) -> PreparedLine:
        line_no, tokens_in, tokens_out, inputs, custom_id, request = raw.rstrip(b"\n").split(
            b"\t", 5
        )
        return cls(
            int(line_no),
            int(tokens_in),
            int(tokens_out),
            int(inputs),
            json.loads(custom_id),
            request,
        )


def prepared_lines(store: ArtifactStore, validation: ValidationReport) -> Iterator[PreparedLine]:
    if validation.requests is None:
        return
    with store.open(validation.requests) as handle:
        for raw in handle:
            yield PreparedLine.decode(raw)


# ---- turning a line into a request ----------------------------------------------------------


def _string_field(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise LineProblem(
            "invalid_custom_id", f"{name} must be a string, got {type(value).__name__}"
        )
    text = str(value)
    if not text or len(text) > MAX_CUSTOM_ID_CHARS:
        raise LineProblem("invalid_custom_id", f"{name} must be 1-{MAX_CUSTOM_ID_CHARS} characters")
    return text


def request_from_line(item: dict[str, Any]) -> tuple[str | None, str, dict[str, Any]]:
    """A ready batch line: (custom_id or None, url, body)."""
    custom_id = _string_field(item, "custom_id")
    if item.get("method", "POST") != "POST":
        raise LineProblem("invalid_method", f"method must be POST, got {item.get('method')!r}")
    url = item.get("url")
    if url not in BATCH_ENDPOINTS:
        raise LineProblem(
            "invalid_url", f"url must be one of {', '.join(BATCH_ENDPOINTS)}, got {url!r}"
        )
    body = item.get("body")
    if not isinstance(body, dict):
        raise LineProblem("invalid_body", "body must be a JSON object with the request")
    return custom_id, url, body


def request_from_record(
    record: dict[str, Any], template: RequestTemplate
) -> tuple[str | None, str, dict[str, Any]]:
    """A plain record turned into (custom_id or None, url, body) by the template."""
    custom_id = _string_field(record, template.id_field) if template.id_field else None
    if template.id_field and custom_id is None:
        raise LineProblem("missing_field", f"the record has no {template.id_field!r} (id_field)")
    text = _template_text(record, template)
    body: dict[str, Any] = {"model": template.model}
    if template.endpoint == "/v1/embeddings":
        body["input"] = text
    elif template.endpoint == "/v1/chat/completions":
        messages = [{"role": "user", "content": text}]
        if template.instructions:
            messages.insert(0, {"role": "system", "content": template.instructions})
        body["messages"] = messages
        if template.max_output_tokens:
            body["max_completion_tokens"] = template.max_output_tokens
    else:
        body["input"] = text
        if template.instructions:
            body["instructions"] = template.instructions
        if template.max_output_tokens:
            body["max_output_tokens"] = template.max_output_tokens
    return custom_id, template.endpoint, {**body, **template.body}


def _template_text(record: dict[str, Any], template: RequestTemplate) -> str:
    if template.input_field is not None:
        value = record.get(template.input_field)
        if not isinstance(value, str) or not value:
            raise LineProblem(
                "missing_field",
                f"the record's {template.input_field!r} (input_field) must be a non-empty string",
            )
        return value
    assert template.prompt_template is not None
    missing = [name for name in template.template_fields() if name not in record]
    if missing:
        raise LineProblem(
            "missing_field", f"the record has no {', '.join(map(repr, missing))} for the template"
        )
    try:
        return template.prompt_template.format_map(record)
    except (KeyError, IndexError, AttributeError, ValueError, TypeError) as error:
        # e.g. {score:.1f} of a text value, or {a.b} of a record whose "a" has no "b"
        raise LineProblem(
            "invalid_field", f"the record does not fit the template ({error!s})"
        ) from None


def embedding_inputs(url: str, body: dict[str, Any]) -> int:
    if url != "/v1/embeddings":
        return 0
    value = body.get("input")
    return len(value) if isinstance(value, list) and value and not isinstance(value[0], int) else 1


def expected_output_tokens(url: str, body: dict[str, Any], default: int) -> int:
    if url == "/v1/embeddings":
        return 0
    for name in ("max_output_tokens", "max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and value > 0:
            return min(value, default) if default else value
    return default


# ---- validation -----------------------------------------------------------------------------


class _SeenIds:
    """custom_ids seen so far, on disk: memory stays flat for any number of records."""

    def __init__(self, directory: Path) -> None:
        # A private temporary directory, removed on close; the database file lives in it.
        self._directory = tempfile.TemporaryDirectory(dir=directory, prefix=".ids-")
        self._db = sqlite3.connect(Path(self._directory.name) / "ids.sqlite")
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("PRAGMA cache_size=-8000")  # 8 MB of page cache, then disk
        self._db.execute("CREATE TABLE ids (id TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID")

    def first_line_of(self, custom_id: str, line: int) -> int | None:
        """None the first time an id is seen; else the line that had it first."""
        inserted = self._db.execute("INSERT OR IGNORE INTO ids VALUES (?, ?)", (custom_id, line))
        if inserted.rowcount == 1:
            return None
        row = self._db.execute("SELECT line FROM ids WHERE id = ?", (custom_id,)).fetchone()
        return int(row[0])

    def close(self) -> None:
        self._db.close()
        self._directory.cleanup()


@dataclass
class _Validation:
    spec: BatchJobSpec
    seen: _SeenIds
    accepted_out: ArtifactWriter
    quarantine_out: ArtifactWriter
    endpoint: str | None = None
    model: str | None = None
    model_line: int = 0
    lines_read: int = 0
    accepted: int = 0
    rejected: int = 0
    first_errors: list[LineError] = field(default_factory=list)

    def check(self, number: int, raw: bytes | None, size: int) -> None:
        self.lines_read += 1
        try:
            if raw is None:
                raise LineProblem(
                    "line_too_large",
                    f"the line has {size:,} bytes; at most {self.spec.max_line_bytes:,} are "
                    "allowed (max_line_bytes): shorten the record or raise the limit",
                )
            self.accepted_out.write(self._prepare(number, raw).encode())
            self.accepted += 1
        except LineProblem as problem:
            self._reject(number, raw, problem)

    def _prepare(self, number: int, raw: bytes) -> PreparedLine:
        try:
            item = json.loads(raw)
        except ValueError as error:
            raise LineProblem("invalid_json", f"not valid JSON ({error})") from None
        if not isinstance(item, dict):
            raise LineProblem("invalid_json", "each line must be a JSON object")
        if self.spec.input_format is InputFormat.REQUESTS:
            custom_id, url, body = request_from_line(item)
        else:
            assert self.spec.template is not None
            custom_id, url, body = request_from_record(item, self.spec.template)
        self._check_endpoint_and_model(url, body)
        custom_id = custom_id or f"line-{number}"
        request = json.dumps(
            {"custom_id": custom_id, "method": "POST", "url": url, "body": body},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        self._check_fits_a_shard(request, url, body)
        first = self.seen.first_line_of(custom_id, number)
        if first is not None:
            raise LineProblem(
                "duplicate_custom_id",
                f"custom_id {custom_id!r} is already used on line {first}; custom_ids must be "
                "unique within a job",
            )
        return PreparedLine(
            line_no=number,
            input_tokens=max(1, len(request) // CHARS_PER_TOKEN),
            output_tokens=expected_output_tokens(url, body, self.spec.expected_output_tokens),
            embedding_inputs=embedding_inputs(url, body),
            custom_id=custom_id,
            request=request,
        )

    def _check_fits_a_shard(self, request: bytes, url: str, body: dict[str, Any]) -> None:
        """A request the planner could only put in a shard over the limits is a bad line."""
        limit = self.spec.shard_limits.max_bytes
        if len(request) + 1 > limit:  # a template or the normalised form can add bytes
            raise LineProblem(
                "request_too_large",
                f"the request made from this line has {len(request) + 1:,} bytes; a shard "
                f"holds at most {limit:,} (shard_limits.max_bytes): shorten the record",
            )
        inputs = embedding_inputs(url, body)
        if inputs > MAX_EMBEDDING_INPUTS_PER_BATCH:
            raise LineProblem(
                "too_many_inputs",
                f"the request has {inputs:,} embedding inputs; a batch takes at most "
                f"{MAX_EMBEDDING_INPUTS_PER_BATCH:,}",
            )

    def _check_endpoint_and_model(self, url: str, body: dict[str, Any]) -> None:
        expected = self.spec.endpoint or self.endpoint
        if expected is not None and url != expected:
            raise LineProblem(
                "endpoint_mismatch",
                f"url {url} differs from the job's endpoint {expected}: one endpoint per job",
            )
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise LineProblem("missing_model", "body.model is required (one model per job)")
        if self.model is not None and model != self.model:
            raise LineProblem(
                "model_mismatch",
                f"model {model!r} differs from {self.model!r} on line {self.model_line}: "
                "one model per job",
            )
        self.endpoint = self.endpoint or url
        if self.model is None:
            self.model, self.model_line = model, self.lines_read

    def _reject(self, number: int, raw: bytes | None, problem: LineProblem) -> None:
        self.rejected += 1
        if len(self.first_errors) < MAX_REPORTED_LINE_ERRORS:
            self.first_errors.append(
                LineError(line=number, code=problem.code, message=problem.message)
            )
        entry: dict[str, Any] = {"line": number, "code": problem.code, "message": problem.message}
        if raw is not None:
            entry["raw"] = raw.decode("utf-8", errors="replace")
        self.quarantine_out.write(json.dumps(entry, ensure_ascii=False).encode() + b"\n")


def validate_input(
    store: ArtifactStore, spec: BatchJobSpec, heartbeat: Callable[[], None] = lambda: None
) -> ValidationReport:
    """Check every line of the job's input; accepted lines go to the prepared requests file."""
    if spec.input.size_bytes > spec.max_input_bytes:
        return _whole_input_refused(spec)
    seen = _SeenIds(store.root)
    try:
        with store.writer(JSONL) as accepted_out, store.writer(JSONL) as quarantine_out:
            validation = _Validation(spec, seen, accepted_out, quarantine_out)
            with store.open(spec.input) as handle:
                for number, raw, size in read_lines(handle, spec.max_line_bytes):
                    if raw is not None and not raw.strip():
                        validation.lines_read += 1  # a blank line carries nothing
                        continue
                    validation.check(number, raw, size)
                    if number % 10_000 == 0:
                        heartbeat()
    finally:
        seen.close()
    return _report(spec, validation, accepted_out, quarantine_out)


def _report(
    spec: BatchJobSpec,
    validation: _Validation,
    accepted: ArtifactWriter,
    quarantine: ArtifactWriter,
) -> ValidationReport:
    usable = validation.accepted > 0 and (
        validation.rejected == 0 or spec.bad_lines is BadLinePolicy.QUARANTINE
    )
    first_errors = list(validation.first_errors)
    if validation.accepted == 0 and validation.rejected == 0:
        first_errors.append(LineError(line=0, code="empty_input", message="the input has no lines"))
    return ValidationReport(
        lines_read=validation.lines_read,
        accepted=validation.accepted if usable else 0,
        rejected=validation.rejected or (0 if validation.accepted else 1),
        first_errors=first_errors,
        endpoint=validation.endpoint,
        model=validation.model,
        requests=accepted.ref if usable else None,
        quarantine=quarantine.ref if validation.rejected else None,
        input_bytes=spec.input.size_bytes,
    )


def _whole_input_refused(spec: BatchJobSpec) -> ValidationReport:
    message = (
        f"the input has {spec.input.size_bytes:,} bytes; this job allows at most "
        f"{spec.max_input_bytes:,} (max_input_bytes): split it into several jobs"
    )
    return ValidationReport(
        lines_read=0,
        accepted=0,
        rejected=1,
        first_errors=[LineError(line=0, code="input_too_large", message=message)],
        endpoint=None,
        model=None,
        requests=None,
        quarantine=None,
        input_bytes=spec.input.size_bytes,
    )


# ---- planning -------------------------------------------------------------------------------


@dataclass
class _ShardCutter:
    """Cuts prepared lines into shards within the job's limits, writing each to the store."""

    store: ArtifactStore
    spec: BatchJobSpec
    round: int
    on_record: Callable[[PreparedLine, int], None]
    shards: list[ShardRef] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    _writer: ArtifactWriter | None = None
    _count: int = 0
    _embedding_inputs: int = 0
    _tokens: int = 0

    def add(self, line: PreparedLine) -> None:
        size = len(line.request) + 1
        if self._writer is not None and not self._fits(line, size):
            self._close_shard()
        if self._writer is None:
            if len(self.shards) >= MAX_SHARDS_PER_ROUND:
                raise PlanTooLarge(
                    f"the input needs more than {MAX_SHARDS_PER_ROUND} shards: split it into "
                    "several jobs"
                )
            self._writer = self.store.writer(JSONL)
        self._writer.write(line.request + b"\n")
        self._count += 1
        self._embedding_inputs += line.embedding_inputs
        self._tokens += line.input_tokens
        self.input_tokens += line.input_tokens
        self.output_tokens += line.output_tokens
        self.requests += 1
        self.on_record(line, len(self.shards))

    def _fits(self, line: PreparedLine, size: int) -> bool:
        assert self._writer is not None
        limits = self.spec.shard_limits
        return (
            self._count < limits.max_requests
            and self._writer.size + size <= limits.max_bytes
            and self._embedding_inputs + line.embedding_inputs <= MAX_EMBEDDING_INPUTS_PER_BATCH
        )

    def _close_shard(self) -> None:
        assert self._writer is not None
        ref = self._writer.close()
        self.shards.append(
            ShardRef(
                round=self.round,
                index=len(self.shards),
                requests=self._count,
                file=ref,
                estimated_input_tokens=self._tokens,
            )
        )
        self._writer, self._count, self._embedding_inputs, self._tokens = None, 0, 0, 0

    def finish(self, model: str | None) -> RoundPlan:
        if self._writer is not None:
            self._close_shard()
        return RoundPlan(
            round=self.round,
            requests=self.requests,
            shards=self.shards,
            estimate=estimate(model, self.input_tokens, self.output_tokens),
        )

    def abandon(self) -> None:
        if self._writer is not None:
            self._writer.discard()


def estimate(model: str | None, input_tokens: int, output_tokens: int) -> Estimate:
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    return Estimate(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_batch_usd=cost_if_known(usage, model, "batch"),
        cost_standard_usd=cost_if_known(usage, model, "standard"),
    )


def cost_if_known(usage: Usage, model: str | None, tier: str) -> Decimal | None:
    if model is None:
        return None
    try:
        return cost(usage, model, tier)
    except UnknownModelPrice:
        return None


class _Buffered:
    """Collects items and hands them to `flush` in chunks (ledger writes)."""

    def __init__(self, flush: Callable[[list[Any]], None], size: int = 2000) -> None:
        self._flush, self._size, self._items = flush, size, list[Any]()

    def add(self, item: Any) -> None:
        self._items.append(item)
        if len(self._items) >= self._size:
            self.drain()

    def drain(self) -> None:
        if self._items:
            self._flush(self._items)
            self._items = []


def plan_first_round(
    store: ArtifactStore,
    records: BatchRecords,
    job_id: str,
    spec: BatchJobSpec,
    validation: ValidationReport,
    heartbeat: Callable[[], None] = lambda: None,
) -> RoundPlan:
    """Shard every accepted request and register each record in the ledger as round 1."""

    def register(chunk: list[NewRecord]) -> None:
        for _ in records.register(job_id, chunk, round=1):
            heartbeat()

    pending = _Buffered(register)
    cutter = _ShardCutter(
        store,
        spec,
        1,
        lambda line, shard: pending.add(NewRecord(line.custom_id, line.line_no, shard)),
    )
    try:
        for line in prepared_lines(store, validation):
            cutter.add(line)
    except BaseException:
        cutter.abandon()
        raise
    plan = cutter.finish(validation.model)
    pending.drain()
    return plan


def plan_retry_round(
    store: ArtifactStore,
    records: BatchRecords,
    job_id: str,
    spec: BatchJobSpec,
    validation: ValidationReport,
    round: int,
    heartbeat: Callable[[], None] = lambda: None,
) -> RoundPlan:
    """Shard only the records the round before left retryable, and move them into `round`."""

    def move(chunk: list[tuple[str, int]]) -> None:
        for _ in records.move_to_round(job_id, round, chunk):
            heartbeat()

    pending = _Buffered(move)
    cutter = _ShardCutter(
        store, spec, round, lambda line, shard: pending.add((line.custom_id, shard))
    )
    wanted = records.retry_candidates(job_id, round)
    next_wanted = next(wanted, None)
    try:
        for line in prepared_lines(store, validation):
            if next_wanted is None:
                break
            if line.line_no == next_wanted[0]:
                cutter.add(line)
                next_wanted = next(wanted, None)
    except BaseException:
        cutter.abandon()
        raise
    plan = cutter.finish(validation.model)
    pending.drain()
    return plan
