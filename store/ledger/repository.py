"""The job ledger: small writes that are safe to repeat, and reads, over one SQLAlchemy engine.

Activities call these methods from worker threads and Temporal retries activities, so every
write is keyed (job id, event key, idempotency key, job id + attempt) and a repeated write
returns what the first one stored instead of writing twice. When two writers race on the
same key, the loser's unique-constraint error is caught and the winner's row returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import Engine, Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from laneway.jobs import ArtifactRef, Usage
from laneway.status import EventKind, ProductStatus
from store.ledger import tables
from store.ledger.engine import create_ledger_engine
from store.ledger.records import (
    JobEvent,
    JobRecord,
    NewJob,
    ProviderIntent,
    ResultRecord,
    SideEffectRecord,
)

T = TypeVar("T")

DEFAULT_INLINE_LIMIT_BYTES = 4096
SYSTEM_ACTOR = "laneway"
CREATED_EVENT_KEY = "created"


class JobNotFound(LookupError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r} in the ledger")
        self.job_id = job_id


class ProviderIdTaken(ValueError):
    """A provider id is already recorded for another job: a bug upstream, never overwritten."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class Ledger:
    def __init__(
        self,
        engine: Engine,
        *,
        inline_limit_bytes: int = DEFAULT_INLINE_LIMIT_BYTES,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.engine = engine
        self.inline_limit_bytes = inline_limit_bytes
        self._clock = clock
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str, *, inline_limit_bytes: int = DEFAULT_INLINE_LIMIT_BYTES) -> Ledger:
        return cls(create_ledger_engine(url), inline_limit_bytes=inline_limit_bytes)

    # --- jobs -------------------------------------------------------------------------

    def record_job(self, job: NewJob) -> JobRecord:
        """Insert the job (and its "created" event), or return the one already recorded."""

        def work(session: Session) -> JobRecord:
            existing = session.get(tables.Job, job.job_id)
            if existing is not None:
                return _job_record(existing)
            now = self._clock()
            row = tables.Job(
                **job.model_dump(mode="json", exclude={"status"}),
                status=job.status.value,
                attempts=0,
                provider_ids=[],
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.add(
                tables.JobEvent(
                    job_id=job.job_id,
                    event_key=CREATED_EVENT_KEY,
                    kind=EventKind.CREATED.value,
                    from_status=None,
                    to_status=job.status.value,
                    actor=job.requested_by,
                    note="",
                    at=now,
                )
            )
            session.flush()
            return _job_record(row)

        return self._write(work)

    def get_job(self, job_id: str) -> JobRecord | None:
        with self._sessions() as session:
            row = session.get(tables.Job, job_id)
            return None if row is None else _job_record(row)

    def list_jobs(
        self,
        *,
        workspace: str | None = None,
        status: ProductStatus | None = None,
        limit: int = 100,
    ) -> list[JobRecord]:
        """Newest first."""
        query = select(tables.Job).order_by(tables.Job.created_at.desc()).limit(limit)
        if workspace is not None:
            query = query.where(tables.Job.workspace == workspace)
        if status is not None:
            query = query.where(tables.Job.status == status.value)
        with self._sessions() as session:
            return [_job_record(row) for row in session.scalars(query)]

    # --- provider ids and intents -----------------------------------------------------

    def record_provider_intent(
        self, job_id: str, idempotency_key: str, *, operation: str = "create", attempt: int = 1
    ) -> ProviderIntent:
        """Record a provider create before making it; the job's attempts count follows.

        `operation` names the call (e.g. responses.create, batches.create) for operators.
        """

        def work(session: Session) -> ProviderIntent:
            existing = session.get(tables.ProviderIntent, idempotency_key)
            if existing is not None:
                return ProviderIntent.model_validate(existing, from_attributes=True)
            job = self._job_row(session, job_id, lock=True)
            now = self._clock()
            if attempt > job.attempts:
                job.attempts = attempt
                job.updated_at = now
            intent = tables.ProviderIntent(
                idempotency_key=idempotency_key,
                job_id=job_id,
                attempt=attempt,
                operation=operation,
                provider_id=None,
                created_at=now,
                resolved_at=None,
            )
            session.add(intent)
            session.flush()
            return ProviderIntent.model_validate(intent, from_attributes=True)

        return self._write(work)

    def get_provider_intent(self, idempotency_key: str) -> ProviderIntent | None:
        with self._sessions() as session:
            row = session.get(tables.ProviderIntent, idempotency_key)
            return None if row is None else ProviderIntent.model_validate(row, from_attributes=True)

    def resolve_provider_intent(
        self, idempotency_key: str, provider_id: str, *, add_to_job: bool = True
    ) -> ProviderIntent:
        """Note which provider object an intent created, and add its id to the job.

        `add_to_job=False` for a helper object (e.g. the input file a batch is created from):
        the job's provider ids name what the job is followed by (responses and batches).
        """

        def work(session: Session) -> ProviderIntent:
            intent = session.get(tables.ProviderIntent, idempotency_key)
            if intent is None:
                raise LookupError(f"no provider intent {idempotency_key!r} in the ledger")
            if intent.provider_id is None:
                intent.provider_id = provider_id
                intent.resolved_at = self._clock()
            if add_to_job:
                self._add_provider_ids(session, intent.job_id, [provider_id])
            session.flush()
            return ProviderIntent.model_validate(intent, from_attributes=True)

        return self._write(work)

    def set_provider_ids(self, job_id: str, provider_ids: Sequence[str]) -> JobRecord:
        """Record provider ids on the job, in order; ids recorded earlier are kept, so a
        webhook about an earlier attempt's response still finds its job."""

        def work(session: Session) -> JobRecord:
            return _job_record(self._add_provider_ids(session, job_id, provider_ids))

        return self._write(work)

    def find_job_by_provider_id(self, provider_id: str) -> JobRecord | None:
        query = (
            select(tables.Job)
            .join(tables.JobProviderId, tables.JobProviderId.job_id == tables.Job.job_id)
            .where(tables.JobProviderId.provider_id == provider_id)
        )
        with self._sessions() as session:
            row = session.scalars(query).one_or_none()
            return None if row is None else _job_record(row)

    # --- status and audit trail -------------------------------------------------------

    def record_status(
        self,
        job_id: str,
        to_status: ProductStatus,
        event_key: str,
        actor: str = SYSTEM_ACTOR,
        note: str = "",
        *,
        kind: EventKind | str = EventKind.STATUS_CHANGED,
        ends_job: bool = False,
    ) -> JobEvent:
        """Move the job to `to_status` and audit it; a repeated `event_key` changes nothing.

        `ends_job`: this is the job's terminal status (its workflow is closing)."""
        return self._append_event(
            job_id, event_key, str(kind), actor, note, to_status, ends_job=ends_job
        )

    def record_event(
        self,
        job_id: str,
        kind: EventKind | str,
        event_key: str,
        actor: str = SYSTEM_ACTOR,
        note: str = "",
    ) -> JobEvent:
        """Audit an action that leaves the status as it is (escalated, archived, ...)."""
        return self._append_event(job_id, event_key, str(kind), actor, note, None)

    def list_events(self, job_id: str) -> list[JobEvent]:
        """Oldest first."""
        query = (
            select(tables.JobEvent)
            .where(tables.JobEvent.job_id == job_id)
            .order_by(tables.JobEvent.id)
        )
        with self._sessions() as session:
            return [
                JobEvent.model_validate(row, from_attributes=True) for row in session.scalars(query)
            ]

    # --- results ----------------------------------------------------------------------

    def fits_inline(self, output: str) -> bool:
        return len(output.encode()) <= self.inline_limit_bytes

    def record_result(
        self,
        job_id: str,
        attempt: int,
        *,
        usage: Usage,
        model: str,
        tier: str,
        cost_usd: Decimal | None,
        output: ArtifactRef | None = None,
        inline_output: str | None = None,
    ) -> ResultRecord:
        """Store one attempt's result: a reference to the output, or the output itself when
        it is small (`fits_inline`). `cost_usd` None means the price is unknown."""
        self._check_output(output, inline_output)

        def work(session: Session) -> ResultRecord:
            existing = session.scalars(_result_query(job_id, attempt)).one_or_none()
            if existing is not None:
                return _result_record(existing)
            self._job_row(session, job_id)
            row = tables.Result(
                job_id=job_id,
                attempt=attempt,
                output_uri=output.uri if output else None,
                output_sha256=output.sha256 if output else None,
                output_size_bytes=output.size_bytes if output else None,
                output_media_type=output.media_type if output else None,
                inline_output=inline_output,
                **usage.model_dump(),
                cost_usd=cost_usd,
                model=model,
                tier=tier,
                created_at=self._clock(),
            )
            session.add(row)
            session.flush()
            return _result_record(row)

        return self._write(work)

    def get_result(self, job_id: str, attempt: int | None = None) -> ResultRecord | None:
        """One attempt's result, or the latest attempt's when `attempt` is None."""
        with self._sessions() as session:
            row = session.scalars(_result_query(job_id, attempt)).first()
            return None if row is None else _result_record(row)

    # --- side effects -----------------------------------------------------------------

    def claim_side_effect(self, job_id: str, kind: str) -> bool:
        """True for the first claim of the job's side effect, False ever after."""

        def work(session: Session) -> bool:
            if session.get(tables.SideEffect, job_id) is not None:
                return False
            self._job_row(session, job_id)
            session.add(
                tables.SideEffect(
                    job_id=job_id, kind=kind, outcome=None, note="", claimed_at=self._clock()
                )
            )
            session.flush()
            return True

        return self._write(work)

    def finish_side_effect(self, job_id: str, outcome: str, note: str = "") -> SideEffectRecord:
        """Record how a claimed side effect ended; the first outcome recorded stays."""

        def work(session: Session) -> SideEffectRecord:
            row = session.get(tables.SideEffect, job_id)
            if row is None:
                raise LookupError(f"job {job_id!r} has no claimed side effect to finish")
            if row.outcome is None:
                row.outcome, row.note, row.finished_at = outcome, note, self._clock()
            return SideEffectRecord.model_validate(row, from_attributes=True)

        return self._write(work)

    def get_side_effect(self, job_id: str) -> SideEffectRecord | None:
        with self._sessions() as session:
            row = session.get(tables.SideEffect, job_id)
            return (
                None if row is None else SideEffectRecord.model_validate(row, from_attributes=True)
            )

    # --- internals --------------------------------------------------------------------

    def _write(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one transaction. If a concurrent writer inserted the same key
        first, run it once more: it then finds the winner's row and returns that."""
        try:
            with self._sessions.begin() as session:
                return work(session)
        except IntegrityError:
            with self._sessions.begin() as session:
                return work(session)

    def _job_row(self, session: Session, job_id: str, *, lock: bool = False) -> tables.Job:
        # FOR UPDATE serialises status changes on PostgreSQL; SQLite's BEGIN IMMEDIATE
        # already holds the database's write lock.
        row = session.get(tables.Job, job_id, with_for_update=lock)
        if row is None:
            raise JobNotFound(job_id)
        return row

    def _add_provider_ids(
        self, session: Session, job_id: str, provider_ids: Sequence[str]
    ) -> tables.Job:
        job = self._job_row(session, job_id, lock=True)
        new_ids = [pid for pid in dict.fromkeys(provider_ids) if pid not in job.provider_ids]
        for provider_id in new_ids:
            owner = session.get(tables.JobProviderId, provider_id)
            if owner is not None and owner.job_id != job_id:
                raise ProviderIdTaken(
                    f"provider id {provider_id!r} already belongs to job {owner.job_id!r}"
                )
            if owner is None:
                session.add(
                    tables.JobProviderId(
                        provider_id=provider_id, job_id=job_id, recorded_at=self._clock()
                    )
                )
        if new_ids:
            job.provider_ids = [*job.provider_ids, *new_ids]
            job.updated_at = self._clock()
        session.flush()
        return job

    def _append_event(
        self,
        job_id: str,
        event_key: str,
        kind: str,
        actor: str,
        note: str,
        to_status: ProductStatus | None,
        *,
        ends_job: bool = False,
    ) -> JobEvent:
        def work(session: Session) -> JobEvent:
            existing = session.scalars(
                select(tables.JobEvent).where(
                    tables.JobEvent.job_id == job_id, tables.JobEvent.event_key == event_key
                )
            ).one_or_none()
            if existing is not None:
                return JobEvent.model_validate(existing, from_attributes=True)
            job = self._job_row(session, job_id, lock=True)
            now = self._clock()
            event = tables.JobEvent(
                job_id=job_id,
                event_key=event_key,
                kind=kind,
                from_status=job.status,
                to_status=job.status if to_status is None else to_status.value,
                actor=actor,
                note=note,
                at=now,
            )
            if to_status is not None:
                job.status = to_status.value
            if ends_job:
                job.ended_at = now
            if kind == EventKind.ARCHIVED:
                job.archived_at, job.archived_by = now, actor
            job.updated_at = now
            session.add(event)
            session.flush()
            return JobEvent.model_validate(event, from_attributes=True)

        return self._write(work)

    def _check_output(self, output: ArtifactRef | None, inline_output: str | None) -> None:
        if output is not None and inline_output is not None:
            raise ValueError("give the output as an artifact reference or inline, not both")
        if inline_output is not None and not self.fits_inline(inline_output):
            raise ValueError(
                f"inline output over {self.inline_limit_bytes} bytes: "
                "put it in the artifact store and record the reference"
            )


def _job_record(row: tables.Job) -> JobRecord:
    return JobRecord.model_validate(row, from_attributes=True)


def _result_query(job_id: str, attempt: int | None) -> Select[tables.Result]:
    query = select(tables.Result).where(tables.Result.job_id == job_id)
    if attempt is not None:
        return query.where(tables.Result.attempt == attempt)
    return query.order_by(tables.Result.attempt.desc())


def _result_record(row: tables.Result) -> ResultRecord:
    output = None
    if row.output_uri is not None:
        output = ArtifactRef(
            uri=row.output_uri,
            sha256=row.output_sha256 or "",
            size_bytes=row.output_size_bytes or 0,
            media_type=row.output_media_type or "application/octet-stream",
        )
    return ResultRecord(
        job_id=row.job_id,
        attempt=row.attempt,
        output=output,
        inline_output=row.inline_output,
        usage=Usage(
            input_tokens=row.input_tokens,
            cached_input_tokens=row.cached_input_tokens,
            output_tokens=row.output_tokens,
            reasoning_tokens=row.reasoning_tokens,
        ),
        cost_usd=row.cost_usd,
        model=row.model,
        tier=row.tier,
        created_at=row.created_at,
    )
