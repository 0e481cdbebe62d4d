"""Run as a process: configure logging, then log from plain code, a workflow and an activity.

`test_logging.py` reads what this prints. The worker caches no workflow, so each workflow task
replays the history from the start: a log line that is not replay-safe would repeat.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta

import structlog
from temporalio import activity, workflow
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from dev.binaries import temporal_test_server
from laneway.logging_setup import LogFormat, configure_logging

JOB_ID = "job-probe-1"


@activity.defn
async def probe_activity(step: int) -> int:
    activity.logger.info("activity step", extra={"job_id": JOB_ID})
    return step + 1


@workflow.defn(sandboxed=False)
class LoggingProbeWorkflow:
    @workflow.run
    async def run(self) -> int:
        workflow.logger.info("workflow started", extra={"job_id": JOB_ID})
        step = 0
        for _ in range(3):
            step = await workflow.execute_activity(
                probe_activity, step, start_to_close_timeout=timedelta(seconds=10)
            )
        workflow.logger.info("workflow finished", extra={"job_id": JOB_ID})
        return step


async def run_probe() -> None:
    structlog.get_logger("probe").info("plain line", job_id=JOB_ID)
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(temporal_test_server()),
        data_converter=pydantic_data_converter,
    )
    async with (
        env,
        Worker(
            env.client,
            task_queue="probe",
            workflows=[LoggingProbeWorkflow],
            activities=[probe_activity],
            max_cached_workflows=0,
        ),
    ):
        await env.client.execute_workflow(
            LoggingProbeWorkflow.run, id="probe-workflow", task_queue="probe"
        )


if __name__ == "__main__":
    log_format: LogFormat = "json" if sys.argv[1:] == ["json"] else "console"
    configure_logging(log_format)
    asyncio.run(run_probe())
    # Leave without the interpreter's teardown, which can race the SDK's native threads
    # (seen once as SIGABRT); everything this probe says has been written by now.
    sys.stderr.flush()
    os._exit(0)
