"""The batch lifecycle, moved by the emulated clock.

validating -> in_progress -> finalizing -> completed, or failed / expired / cancelling ->
cancelled. Every transition is stamped with the time it was due (not the time a tick noticed),
so timestamps are consistent even after the clock jumps. Requests run in a deterministic
shuffle of the input order, in chunks, and their result lines are appended to the output and
error files as they finish, so a 50,000-line batch never sits in memory as JSON text.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from emulator import ids
from emulator.batch_model import BatchLine, BatchRecord
from emulator.batch_validation import Limits, validate_file
from emulator.config import EmulatorConfig
from emulator.errors import error_body
from emulator.events import Event
from emulator.executor import Outcome, execute
from emulator.faults import BATCH_KINDS, FaultBook, FaultContext, FaultKind, FaultRule
from emulator.store import FILE_TTL_SECONDS, Store, StoredFile

log = structlog.get_logger()
CHUNK = 2000  # requests executed per batch per step: keeps each step short
CANCELLABLE = frozenset({"validating", "in_progress", "finalizing"})


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _unit_hash(*parts: str) -> float:
    digest = hashlib.sha256(":".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def execution_order(lines: list[BatchLine]) -> list[BatchLine]:
    """A deterministic shuffle, so output order differs from input order (as OpenAI's may)."""
    return sorted(lines, key=lambda line: hashlib.sha1(line.custom_id.encode()).digest())


@dataclass
class _Chunk:
    output: list[str]
    errors: list[str]
    completed: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


class BatchEngine:
    def __init__(self, store: Store, config: EmulatorConfig, faults: FaultBook) -> None:
        self.store = store
        self.config = config
        self.faults = faults

    # --- the step ----------------------------------------------------------------------------

    def step(self, now: float, events: list[Event]) -> bool:
        """Advance every live batch as far as `now` allows; True if anything changed."""
        with self.store.lock:
            live = [b for b in self.store.batches.values() if not b.terminal]
        progressed = False
        for batch in live:
            progressed |= self._advance(batch, now, events)
        return progressed

    def _advance(self, batch: BatchRecord, now: float, events: list[Event]) -> bool:
        progressed = False
        for _ in range(10):  # bounded: a step is a slice of work, the next tick continues
            if not self._advance_once(batch, now, events):
                break
            progressed = True
        return progressed

    def _advance_once(self, batch: BatchRecord, now: float, events: list[Event]) -> bool:
        cfg = self.config
        status = batch.status
        if status == "validating" and now >= batch.created_at + cfg.batch_validating_seconds:
            return self._validate(
                batch, int(batch.created_at + cfg.batch_validating_seconds), events
            )
        if status == "in_progress":
            return self._run(batch, now, events)
        if status == "finalizing" and not batch.faults.stick_finalizing:
            due = batch.times["finalizing_at"] + cfg.batch_finalizing_seconds
            if now >= due:
                return self._finish(batch, "completed", int(due), events)
        if status == "cancelling":
            due = batch.times["cancelling_at"] + cfg.batch_cancelling_seconds
            if now >= due:
                return self._finish(batch, "cancelled", int(due), events)
        return False

    # --- validating ----------------------------------------------------------------------------

    def _validate(self, batch: BatchRecord, due: int, events: list[Event]) -> bool:
        with self.store.lock:
            stored = self.store.files.get(batch.input_file_id)
        limits = Limits(
            self.config.max_requests_per_batch, self.config.max_embedding_inputs_per_batch
        )
        if stored is None:
            errors = [_batch_error("invalid_file", "The input file was deleted.", None)]
            return self._fail(batch, due, errors, events)
        result = validate_file(stored.path, batch.endpoint, limits)
        if result.errors:
            return self._fail(batch, due, result.errors, events)
        ctx = FaultContext("POST", "/v1/batches", result.model, batch.metadata or {}, batch.id)
        fired = {rule.kind: rule for rule in self.faults.fire(BATCH_KINDS, ctx)}
        injected = _injected_failure(fired, result.model)
        if injected is not None:
            return self._fail(batch, due, [injected], events)
        with self.store.lock:
            if batch.status != "validating":
                return False
            batch.model = result.model
            batch.lines = execution_order(result.lines)
            batch.total = len(batch.lines)
            batch.faults.fail_fraction = fired.get(FaultKind.BATCH_FAIL_FRACTION)
            batch.faults.expire = fired.get(FaultKind.BATCH_EXPIRE)
            batch.faults.stick_finalizing = FaultKind.BATCH_STICK_FINALIZING in fired
            batch.faults.omit_results = fired.get(FaultKind.BATCH_OMIT_RESULTS)
            batch.output_path = self.store.new_file_path()
            batch.error_path = self.store.new_file_path()
            batch.status = "in_progress"
            batch.times["in_progress_at"] = due
        log.info("batch in progress", batch_id=batch.id, total=batch.total)
        return True

    def _fail(
        self, batch: BatchRecord, due: int, errors: list[dict[str, Any]], events: list[Event]
    ) -> bool:
        with self.store.lock:
            if batch.status != "validating":
                return False
            batch.status = "failed"
            batch.errors = errors
            batch.times["failed_at"] = due
        events.append(Event("batch.failed", batch.id, due))
        log.info("batch failed validation", batch_id=batch.id, errors=len(errors))
        return True

    # --- in progress ---------------------------------------------------------------------------

    def _run(self, batch: BatchRecord, now: float, events: list[Event]) -> bool:
        per = self.config.batch_seconds_per_request
        start = batch.times["in_progress_at"]
        target = self._target(batch, min(now, batch.expires_at))
        if target > batch.next_index:
            self._execute_chunk(batch, min(target, batch.next_index + CHUNK))
            return True
        if batch.next_index >= batch.total:
            with self.store.lock:
                if batch.status != "in_progress":
                    return False
                batch.status = "finalizing"
                batch.times["finalizing_at"] = int(start + batch.total * per)
            return True
        if now >= batch.expires_at:
            self._expire(batch, events)
            return True
        return False

    def _target(self, batch: BatchRecord, horizon: float) -> int:
        """How many requests should have finished by `horizon`."""
        per = self.config.batch_seconds_per_request
        elapsed = horizon - batch.times["in_progress_at"]
        target = batch.total if per == 0 else min(batch.total, max(0, math.floor(elapsed / per)))
        rule = batch.faults.expire
        if rule is not None and batch.total > 0:
            target = min(target, int(rule.fraction * batch.total), batch.total - 1)
        return target

    def _execute_chunk(self, batch: BatchRecord, end: int) -> None:
        per = self.config.batch_seconds_per_request
        start = batch.times["in_progress_at"]
        chunk = _Chunk([], [])
        for index in range(batch.next_index, end):
            line = batch.lines[index]
            outcome = self._outcome(batch, line, int(start + (index + 1) * per))
            _record(chunk, line, outcome, written=not self._omitted(batch, line))
        _append(batch.output_path, chunk.output)
        _append(batch.error_path, chunk.errors)
        with self.store.lock:
            batch.next_index = end
            batch.completed += chunk.completed
            batch.failed += chunk.failed
            batch.usage.input_tokens += chunk.input_tokens
            batch.usage.output_tokens += chunk.output_tokens

    def _outcome(self, batch: BatchRecord, line: BatchLine, at: int) -> Outcome:
        rule = batch.faults.fail_fraction
        if rule is not None and _unit_hash(str(rule.seed), line.custom_id) < rule.fraction:
            return _injected_request_failure(rule, line.custom_id)
        return execute(batch.endpoint, line.body, at)

    @staticmethod
    def _omitted(batch: BatchRecord, line: BatchLine) -> bool:
        rule = batch.faults.omit_results
        return (
            rule is not None and _unit_hash("omit", str(rule.seed), line.custom_id) < rule.fraction
        )

    def _expire(self, batch: BatchRecord, events: list[Event]) -> None:
        remaining = batch.lines[batch.next_index :]
        message = "This request could not be executed before the completion window expired."
        _append(
            batch.error_path,
            [
                _dumps(
                    {
                        "id": ids.batch_request_id(),
                        "custom_id": line.custom_id,
                        "response": None,
                        "error": {"code": "batch_expired", "message": message},
                    }
                )
                for line in remaining
            ],
        )
        with self.store.lock:
            batch.failed += len(remaining)
            batch.next_index = batch.total
        self._finish(batch, "expired", batch.expires_at, events)

    # --- terminal ------------------------------------------------------------------------------

    def _finish(self, batch: BatchRecord, status: str, at: int, events: list[Event]) -> bool:
        output = self._register(batch, batch.output_path, "output", batch.completed)
        errors = self._register(batch, batch.error_path, "error", batch.failed)
        with self.store.lock:
            batch.output_file_id = output
            batch.error_file_id = errors
            batch.status = status
            batch.times[f"{status}_at"] = at
            batch.lines = []  # the requests are in the files now
        events.append(Event(f"batch.{status}", batch.id, at))
        log.info("batch finished", batch_id=batch.id, status=status)
        return True

    def _register(self, batch: BatchRecord, path: Path | None, kind: str, count: int) -> str | None:
        if path is None or count == 0 or not path.exists() or path.stat().st_size == 0:
            return None
        stored = StoredFile(
            filename=f"{batch.id}_{kind}.jsonl",
            purpose="batch_output",
            bytes=path.stat().st_size,
            created_at=batch.created_at,
            expires_at=batch.created_at + FILE_TTL_SECONDS,
            path=path,
        )
        return self.store.add_file(stored, kind="output_files").id

    def cancel(self, batch: BatchRecord, now: int) -> None:
        """Called by the route under the store lock."""
        if batch.status in CANCELLABLE:
            batch.status = "cancelling"
            batch.times["cancelling_at"] = now


def _batch_error(code: str, message: str, line: int | None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": None, "line": line}


def _injected_failure(
    fired: dict[FaultKind, FaultRule], model: str | None
) -> dict[str, Any] | None:
    if rule := fired.get(FaultKind.BATCH_VALIDATION_FAILED):
        text = rule.message or "The batch input file failed validation (injected)."
        return _batch_error("invalid_request", text, 1)
    if rule := fired.get(FaultKind.BATCH_TOKEN_LIMIT_EXCEEDED):
        text = rule.message or (
            f"Enqueued token limit reached for {model} in organization org-emulator. "
            "Limit: 90,000 enqueued tokens. Please try again once some in_progress batches "
            "have been completed."
        )
        return _batch_error("token_limit_exceeded", text, None)
    return None


def _injected_request_failure(rule: FaultRule, custom_id: str) -> Outcome:
    status = rule.status_code or (429 if _unit_hash("status", custom_id) < 0.5 else 500)
    if status == 429:
        body = error_body(
            rule.message or "Rate limit reached for requests. Please try again later.",
            "requests",
            None,
            "rate_limit_exceeded",
        )
    else:
        body = error_body(
            rule.message or "The server had an error while processing your request.",
            "server_error",
            None,
            "server_error",
        )
    return Outcome(status, body)


def _record(chunk: _Chunk, line: BatchLine, outcome: Outcome, *, written: bool = True) -> None:
    text = _dumps(
        {
            "id": ids.batch_request_id(),
            "custom_id": line.custom_id,
            "response": {
                "status_code": outcome.status_code,
                "request_id": ids.request_id(),
                "body": outcome.body,
            },
            "error": None,
        }
    )
    if outcome.status_code < 400:
        if written:
            chunk.output.append(text)
        chunk.completed += 1
        chunk.input_tokens += outcome.input_tokens
        chunk.output_tokens += outcome.output_tokens
    else:
        if written:
            chunk.errors.append(text)
        chunk.failed += 1


def _append(path: Path | None, lines: list[str]) -> None:
    if path is None or not lines:
        return
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
