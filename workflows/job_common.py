"""What every Laneway job workflow shares: call timeouts, the audit trail, the control checks.

Workflow-side only (deterministic): the audit trail writes through the ledger activity with
event keys derived from the workflow id, so a replayed or retried write lands once.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from laneway.background import PROVIDER_REJECTED, RECORD_STATUS, ControlRequest, StatusChange
    from laneway.permissions import (
        ACTION_FORBIDDEN,
        ACTION_NOT_ALLOWED_NOW,
        REVIEW_ACTIONS,
        refusal,
    )
    from laneway.status import ProductStatus

LEDGER_CALL_TIMEOUT = timedelta(seconds=30)
LEDGER_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
PROVIDER_CALL_TIMEOUT = timedelta(seconds=30)
PROVIDER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
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
        self, *, kind: str, actor: str, note: str, to_status: ProductStatus | None = None
    ) -> None:
        self._events += 1
        change = StatusChange(
            job_id=self._job_id,
            to_status=to_status,
            event_key=f"{workflow.info().workflow_id}/event-{self._events}",
            actor=actor,
            note=note,
            kind=kind,
        )
        await workflow.execute_activity(
            RECORD_STATUS,
            change,
            start_to_close_timeout=LEDGER_CALL_TIMEOUT,
            retry_policy=LEDGER_RETRY,
        )


async def signal_workflow(workflow_id: str, signal: Any, *args: Any) -> bool:
    """Signal another workflow; False if it has already ended (a race nobody need lose)."""
    try:
        await workflow.get_external_workflow_handle(workflow_id).signal(signal, args=list(args))
    except FailureError as error:
        workflow.logger.info(
            "signal not delivered", extra={"to": workflow_id, "reason": str(error)}
        )
        return False
    return True


async def wait_for(condition: Callable[[], bool], limit: timedelta) -> bool:
    """Whether `condition` came true before `limit` (a durable timer) ran out."""
    try:
        await workflow.wait_condition(condition, timeout=limit)
    except builtins.TimeoutError:
        return False
    return True


def check_action_allowed(action: str, status: ProductStatus, allowed: list[str]) -> None:
    if action not in allowed:
        raise ApplicationError(
            f"cannot {action} a job that is {status.value}; "
            f"allowed now: {', '.join(allowed) or 'nothing'}",
            type=ACTION_NOT_ALLOWED_NOW,
        )


def check_control(
    request: ControlRequest,
    action: str,
    *,
    workspace: str,
    requested_by: str,
    status: ProductStatus,
    allowed: list[str],
    already_decided: str | None = None,
) -> None:
    """An update validator's checks: may this actor, and does the action make sense now."""
    check_permission(request, action, workspace=workspace, requested_by=requested_by)
    if already_decided is not None and action in REVIEW_ACTIONS:
        raise ApplicationError(already_decided, type=ACTION_NOT_ALLOWED_NOW)
    check_action_allowed(action, status, allowed)


def check_permission(
    request: ControlRequest, action: str, *, workspace: str, requested_by: str
) -> None:
    """The rule of `laneway.permissions`, as an update validator's refusal."""
    reason = refusal(request.actor, action, workspace=workspace, requested_by=requested_by)
    if reason is not None:
        raise ApplicationError(reason, type=ACTION_FORBIDDEN)
