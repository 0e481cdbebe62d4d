"""Waiting inside a workflow: durable timers, and the poll that a provider event can cut short.

A provider is followed by a poll activity whose retries (server-side durable timers with
backoff) do the waiting, so hours of waiting add no history while nothing changes. A
`provider_event` signal (the webhook path) or a control action wakes the workflow early: the
poll is cancelled and the caller looks at the provider itself.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    RetryState,
    TimeoutError,
)

with workflow.unsafe.imports_passed_through():
    from laneway.background import PROVIDER_REJECTED, PollingPolicy
    from workflows.job_common import PROVIDER_CALL_TIMEOUT

RequestT = TypeVar("RequestT")
SnapshotT = TypeVar("SnapshotT")


async def wait_for(condition: Callable[[], bool], limit: timedelta) -> bool:
    """Whether `condition` came true before `limit` (a durable timer) ran out."""
    try:
        await workflow.wait_condition(condition, timeout=limit)
    except builtins.TimeoutError:
        return False
    return True


async def poll_or_wake(
    poll: Callable[[RequestT], Awaitable[SnapshotT]],
    request: RequestT,
    *,
    polling: PollingPolicy,
    deadline: timedelta,
    woken: Callable[[], bool],
) -> SnapshotT | None:
    """The poll activity's answer, or None when `woken()` came true first (poll cancelled).

    The activity raises its "unchanged" error while nothing changed; its retry policy is the
    polling schedule, and `deadline` bounds the whole wait (see `out_of_time`).
    """
    polling_task = workflow.start_activity(
        poll,
        request,
        start_to_close_timeout=PROVIDER_CALL_TIMEOUT,
        schedule_to_close_timeout=deadline,
        retry_policy=RetryPolicy(
            initial_interval=polling.first_interval,
            backoff_coefficient=polling.backoff,
            maximum_interval=polling.max_interval,
            non_retryable_error_types=[PROVIDER_REJECTED],
        ),
    )
    interrupt = asyncio.create_task(workflow.wait_condition(woken))
    await workflow.wait([polling_task, interrupt], return_when=asyncio.FIRST_COMPLETED)
    if polling_task.done():
        interrupt.cancel()
        return await polling_task
    polling_task.cancel()
    await asyncio.gather(polling_task, return_exceptions=True)
    return None


def out_of_time(error: ActivityError, unchanged_type: str) -> bool:
    """The poll gave up at its deadline: the timeout itself, or a last attempt ("still
    unchanged", or a 5xx the provider answered) whose next retry would fall after it."""
    cause = error.cause
    return (
        isinstance(cause, TimeoutError)
        or error.retry_state == RetryState.TIMEOUT
        or (isinstance(cause, ApplicationError) and cause.type == unchanged_type)
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
