"""What every Laneway workflow shares: call timeouts, the audit trail, the end of a job.

Workflow-side only (deterministic): the audit trail writes through the ledger activity with
event keys derived from the workflow id, so a replayed or retried write lands once.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from laneway.background import PROVIDER_REJECTED, StatusChange
    from laneway.status import ProductStatus
    from workflows.activity_types import record_job_status

LEDGER_CALL_TIMEOUT = timedelta(seconds=30)
# Every retry policy ends: the ledger is retried for about 18 minutes (an outage or a
# restart), the provider for about 19 (a storm); then the call fails and the job ends in a
# product status that says why.
LEDGER_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30), maximum_attempts=40)
PROVIDER_CALL_TIMEOUT = timedelta(seconds=30)
# Long activities heartbeat every couple of seconds: a worker that dies under one is noticed
# within this, not at the end of its start-to-close timeout.
HEARTBEAT_TIMEOUT = timedelta(seconds=30)
PROVIDER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=25,
    non_retryable_error_types=[PROVIDER_REJECTED],
)


class JobEnds(Exception):
    """Unwinds a job's lifecycle to its single end: a terminal product status."""

    def __init__(self, status: ProductStatus, reason: str, actor: str = "laneway") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.actor = actor


class AuditTrail:
    """The job's entries in the ledger, each keyed `<workflow id>/event-<n>`."""

    def __init__(self, job_id: str, events: int = 0) -> None:
        self._job_id = job_id
        self._events = events

    @property
    def events(self) -> int:
        """How many entries this job has written (a new run continues the count)."""
        return self._events

    async def record(
        self,
        *,
        kind: str,
        actor: str,
        note: str,
        to_status: ProductStatus | None = None,
        ends_job: bool = False,
    ) -> None:
        self._events += 1
        change = StatusChange(
            job_id=self._job_id,
            to_status=to_status,
            event_key=f"{workflow.info().workflow_id}/event-{self._events}",
            actor=actor,
            note=note,
            kind=kind,
            ends_job=ends_job,
        )
        await workflow.execute_activity(
            record_job_status,
            change,
            start_to_close_timeout=LEDGER_CALL_TIMEOUT,
            retry_policy=LEDGER_RETRY,
        )
