"""The time-skipping harness skips a 24-hour durable timer instead of waiting it out."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker


class TimerReport(BaseModel):
    started: datetime
    woke: datetime


@workflow.defn
class DayLongTimerWorkflow:
    @workflow.run
    async def run(self, wait: timedelta) -> TimerReport:
        started = workflow.now()
        await workflow.sleep(wait)
        return TimerReport(started=started, woke=workflow.now())


async def test_24h_timer_is_skipped(time_skipping_env: WorkflowEnvironment) -> None:
    task_queue = f"timer-{uuid.uuid4().hex[:8]}"
    async with Worker(
        time_skipping_env.client, task_queue=task_queue, workflows=[DayLongTimerWorkflow]
    ):
        wall_start = time.monotonic()
        report = await time_skipping_env.client.execute_workflow(
            DayLongTimerWorkflow.run,
            timedelta(hours=24),
            id=f"timer-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        wall_elapsed = time.monotonic() - wall_start

    assert report.woke - report.started >= timedelta(hours=24)
    # Skipped, not waited: a minute is far above any machine's overhead, far below a day.
    assert wall_elapsed < 60, f"a 24h timer took {wall_elapsed:.2f}s of wall time"
