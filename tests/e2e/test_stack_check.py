"""The harness end to end: a real dev server, the emulator over HTTP and Laneway's worker."""

from __future__ import annotations

import uuid

from temporalio.testing import WorkflowEnvironment

from emulator.server import EmulatorServer
from laneway.settings import Settings
from tests.conftest import WorkerFactory
from workflows.stack_check import StackCheckWorkflow


async def test_stack_check_reaches_the_emulator(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
) -> None:
    async with laneway_worker(dev_server_env):
        check = await dev_server_env.client.execute_workflow(
            StackCheckWorkflow.run,
            id=f"stack-check-{uuid.uuid4()}",
            task_queue=settings.task_queue,
        )
    assert check.base_url.rstrip("/") == emulator.base_url
    assert check.models, "the emulator lists its models"


async def test_dev_server_has_laneway_search_attributes(
    dev_server_env: WorkflowEnvironment,
) -> None:
    # A query on an unregistered attribute is rejected by the server, so this proves registration.
    count = await dev_server_env.client.count_workflows(
        "LanewayStatus = 'needs_review' AND LanewayProviderIds = 'batch_1'"
    )
    assert count.count == 0
