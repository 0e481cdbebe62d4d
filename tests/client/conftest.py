"""Fixtures for the Python client: a client on the dev server and research-brief specs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from client.jobs import LanewayClient
from laneway.background import Actor, JobView
from laneway.jobs import JobInput, JobSpec, ReviewPolicy
from laneway.settings import Settings
from tests.conftest import WorkerFactory

WORKSPACE = "acme"
REQUESTER = "alice"
REVIEWER = Actor(id="rita", workspace=WORKSPACE, roles=frozenset({"reviewer"}))
BRIEF = "Brief on churn: customers love the great support team."


def research_brief(text: str = BRIEF, **fields: object) -> JobSpec:
    """A research brief by alice in acme that a reviewer must approve."""
    return JobSpec.model_validate(
        {
            "job_type": "research_brief",
            "workspace": WORKSPACE,
            "requested_by": REQUESTER,
            "input": JobInput(model="gpt-4o-mini", text=text),
            "review_policy": ReviewPolicy.REQUIRED,
            **fields,
        }
    )


@pytest.fixture
async def client(
    dev_server_env: WorkflowEnvironment, laneway_worker: WorkerFactory, settings: Settings
) -> AsyncIterator[LanewayClient]:
    """A client on the dev server, with Laneway's worker serving the test's task queue."""
    laneway = LanewayClient(dev_server_env.client, settings)
    async with laneway_worker(dev_server_env):
        yield laneway
    laneway.close()


async def wait_for_status(client: LanewayClient, job_id: str, status: str) -> JobView:
    """Ask `status` until the job shows `status`, as a backend service would."""
    deadline = time.monotonic() + 30
    view = await client.background_status(job_id)
    while view.status != status:
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} never reached {status}; last {view.status}")
        await asyncio.sleep(0.05)
        view = await client.background_status(job_id)
    return view
