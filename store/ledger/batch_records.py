"""Per-record state of batch jobs: bulk writes that are safe to repeat, and ordered reads.

A batch job has up to millions of records, so this store works in chunks with SQLAlchemy
Core (executemany) rather than one ORM object per row, and every read that feeds a file is
a cursor ordered by input line, so callers stream it in constant memory.

Every write is keyed so an activity retried after a crash changes nothing the first try
already did: records are inserted once per (job, custom_id); a result lands only on a record
still `pending` in the same round and shard; a round moves only records of the round before.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, and_, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from laneway.batch import RecordCounts, RecordState
from laneway.jobs import Usage
from store.ledger import tables
from store.ledger.engine import READ_ONLY

CHUNK = 2000
_T = cast(Table, tables.BatchRecord.__table__)


@dataclass(frozen=True)
class NewRecord:
    custom_id: str
    line_no: int
    shard: int


@dataclass(frozen=True)
class RecordResult:
    """One result line from the provider, reduced to what the ledger keeps."""

    custom_id: str
    state: RecordState
    retryable: bool = False
    error_code: str | None = None
    error_message: str | None = None
    output_uri: str | None = None
    output_offset: int | None = None
    output_length: int | None = None
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class StoredRecord:
    custom_id: str
    line_no: int
    round: int
    shard: int
    state: RecordState
    retryable: bool
    error_code: str | None
    error_message: str | None
    batch_id: str | None
    output_uri: str | None
    output_offset: int | None
    output_length: int | None


def _chunks(items: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class BatchRecords:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _insert_ignoring_existing(self) -> Insert:
        if self.engine.dialect.name == "postgresql":
            return postgresql.insert(_T).on_conflict_do_nothing()
        return sqlite.insert(_T).on_conflict_do_nothing()

    def register(
        self, job_id: str, records: Iterable[NewRecord], *, round: int = 1
    ) -> Iterator[int]:
        """Insert records as pending in `round`; yields after each chunk (for heartbeats)."""
        statement = self._insert_ignoring_existing()
        written = 0
        for chunk in _chunks(records):
            rows = [
                {
                    "job_id": job_id,
                    "custom_id": r.custom_id,
                    "line_no": r.line_no,
                    "round": round,
                    "shard": r.shard,
                    "state": RecordState.PENDING.value,
                    "retryable": False,
                    "input_tokens": 0,
                    "cached_input_tokens": 0,
                    "output_tokens": 0,
                    "reasoning_tokens": 0,
                }
                for r in chunk
            ]
            with self.engine.begin() as connection:
                connection.execute(statement, rows)
            written += len(rows)
            yield written

    def record_results(
        self, job_id: str, round: int, shard: int, batch_id: str, results: Iterable[RecordResult]
    ) -> Iterator[int]:
        """Land results on records still pending in this round and shard; yields per chunk."""
        statement = (
            update(_T)
            .where(
                _T.c.job_id == bindparam("b_job_id"),
                _T.c.custom_id == bindparam("b_custom_id"),
                _T.c.round == bindparam("b_round"),
                _T.c.shard == bindparam("b_shard"),
                _T.c.state == RecordState.PENDING.value,
            )
            .values(
                state=bindparam("state"),
                retryable=bindparam("retryable"),
                error_code=bindparam("error_code"),
                error_message=bindparam("error_message"),
                batch_id=bindparam("batch_id"),
                output_uri=bindparam("output_uri"),
                output_offset=bindparam("output_offset"),
                output_length=bindparam("output_length"),
                input_tokens=bindparam("input_tokens"),
                cached_input_tokens=bindparam("cached_input_tokens"),
                output_tokens=bindparam("output_tokens"),
                reasoning_tokens=bindparam("reasoning_tokens"),
            )
        )
        done = 0
        for chunk in _chunks(results):
            rows = [
                {
                    "b_job_id": job_id,
                    "b_custom_id": r.custom_id,
                    "b_round": round,
                    "b_shard": shard,
                    "state": r.state.value,
                    "retryable": r.retryable,
                    "error_code": r.error_code,
                    "error_message": r.error_message,
                    "batch_id": batch_id,
                    "output_uri": r.output_uri,
                    "output_offset": r.output_offset,
                    "output_length": r.output_length,
                    **r.usage.model_dump(),
                }
                for r in chunk
            ]
            with self.engine.begin() as connection:
                connection.execute(statement, rows)
            done += len(rows)
            yield done

    def fail_pending(
        self,
        job_id: str,
        round: int,
        shard: int,
        *,
        state: RecordState,
        retryable: bool,
        code: str,
        message: str,
        batch_id: str | None,
    ) -> int:
        """Give every record of the shard still pending this ending (missing, batch failed)."""
        statement = (
            update(_T)
            .where(
                _T.c.job_id == job_id,
                _T.c.round == round,
                _T.c.shard == shard,
                _T.c.state == RecordState.PENDING.value,
            )
            .values(
                state=state.value,
                retryable=retryable,
                error_code=code,
                error_message=message,
                batch_id=batch_id,
            )
        )
        with self.engine.begin() as connection:
            return connection.execute(statement).rowcount

    def move_to_round(
        self, job_id: str, round: int, assignments: Iterable[tuple[str, int]]
    ) -> Iterator[int]:
        """Put records of the round before into `round` with their new shard, pending again."""
        statement = (
            update(_T)
            .where(
                _T.c.job_id == bindparam("b_job_id"),
                _T.c.custom_id == bindparam("b_custom_id"),
                _T.c.round == round - 1,
            )
            .values(
                round=round,
                shard=bindparam("b_new_shard"),
                state=RecordState.PENDING.value,
                retryable=False,
                batch_id=None,
            )
        )
        done = 0
        for chunk in _chunks(assignments):
            rows = [{"b_job_id": job_id, "b_custom_id": cid, "b_new_shard": s} for cid, s in chunk]
            with self.engine.begin() as connection:
                connection.execute(statement, rows)
            done += len(rows)
            yield done

    def retry_candidates(self, job_id: str, round: int) -> Iterator[tuple[int, str]]:
        """(line_no, custom_id) of the records `round` resends, in input order.

        Those are the round before's retryable failures, plus records an earlier try of this
        same planning step already moved into `round` (so repeating it gives the same shards).
        """
        query = (
            select(_T.c.line_no, _T.c.custom_id)
            .where(
                _T.c.job_id == job_id,
                or_(
                    and_(_T.c.round == round - 1, _T.c.retryable.is_(True)),
                    _T.c.round == round,
                ),
            )
            .order_by(_T.c.line_no)
        )
        yield from self._stream(query, lambda row: (row.line_no, row.custom_id))

    def records_in_order(self, job_id: str) -> Iterator[StoredRecord]:
        query = select(_T).where(_T.c.job_id == job_id).order_by(_T.c.line_no)
        yield from self._stream(query, _stored)

    def counts(
        self, job_id: str, *, round: int | None = None, shard: int | None = None
    ) -> RecordCounts:
        query = select(_T.c.state, _T.c.retryable, func.count()).where(_T.c.job_id == job_id)
        if round is not None:
            query = query.where(_T.c.round == round)
        if shard is not None:
            query = query.where(_T.c.shard == shard)
        query = query.group_by(_T.c.state, _T.c.retryable)
        counts = RecordCounts()
        with self._reading() as connection:
            for state, retryable, count in connection.execute(query):
                counts.total += count
                if state == RecordState.SUCCEEDED.value:
                    counts.succeeded += count
                elif state == RecordState.PENDING.value:
                    counts.pending += count
                else:
                    counts.failed += count
                    counts.retryable += count if retryable else 0
        return counts

    def count_state(self, job_id: str, round: int, shard: int, state: RecordState) -> int:
        query = select(func.count()).where(
            _T.c.job_id == job_id,
            _T.c.round == round,
            _T.c.shard == shard,
            _T.c.state == state.value,
        )
        with self._reading() as connection:
            return int(connection.execute(query).scalar_one())

    def usage(self, job_id: str, *, round: int | None = None, shard: int | None = None) -> Usage:
        query = select(
            func.coalesce(func.sum(_T.c.input_tokens), 0),
            func.coalesce(func.sum(_T.c.cached_input_tokens), 0),
            func.coalesce(func.sum(_T.c.output_tokens), 0),
            func.coalesce(func.sum(_T.c.reasoning_tokens), 0),
        ).where(_T.c.job_id == job_id)
        if round is not None:
            query = query.where(_T.c.round == round)
        if shard is not None:
            query = query.where(_T.c.shard == shard)
        with self._reading() as connection:
            row = connection.execute(query).one()
        return Usage(
            input_tokens=int(row[0]),
            cached_input_tokens=int(row[1]),
            output_tokens=int(row[2]),
            reasoning_tokens=int(row[3]),
        )

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with self.engine.connect() as connection:
            yield connection.execution_options(**{READ_ONLY: True})

    def _stream(self, query: Any, convert: Any) -> Iterator[Any]:
        with self._reading() as connection:
            result = connection.execution_options(stream_results=True, yield_per=CHUNK).execute(
                query
            )
            for row in result:
                yield convert(row)


def _stored(row: Any) -> StoredRecord:
    return StoredRecord(
        custom_id=row.custom_id,
        line_no=row.line_no,
        round=row.round,
        shard=row.shard,
        state=RecordState(row.state),
        retryable=bool(row.retryable),
        error_code=row.error_code,
        error_message=row.error_message,
        batch_id=row.batch_id,
        output_uri=row.output_uri,
        output_offset=row.output_offset,
        output_length=row.output_length,
    )
