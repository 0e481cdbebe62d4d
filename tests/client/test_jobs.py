"""The Python client: start, status, approve, refusals in plain words, results."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from temporalio.testing import WorkflowEnvironment

from client.jobs import JobActionRefused, JobNotFoundError, LanewayClient
from laneway.background import Actor, BackgroundJobInput
from laneway.jobs import ReviewPolicy
from laneway.settings import Settings
from laneway.status import ProductStatus
from tests.background.conftest import REQUESTER, REVIEWER, WORKSPACE, wait_for_status
from tests.conftest import WorkerFactory


async def test_start_review_approve_and_fetch(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    make_job: Callable[..., BackgroundJobInput],
) -> None:
    spec = make_job("Brief on churn: customers love the great support.").spec
    spec = spec.model_copy(update={"review_policy": ReviewPolicy.REQUIRED})
    client = LanewayClient(dev_server_env.client, settings)
    async with laneway_worker(dev_server_env):
        job_id = await client.start_background_job(spec)
        again = await client.start_background_job(spec, job_id=job_id)
        assert again == job_id
        await wait_for_status(client.temporal.get_workflow_handle(job_id), "needs_review")
        requester = Actor(id=REQUESTER, workspace=WORKSPACE, roles=frozenset({"reviewer"}))
        with pytest.raises(JobActionRefused, match="alice requested this job and cannot approve"):
            await client.approve(job_id, requester)
        view = await client.approve(job_id, REVIEWER, "fine")
        assert view.status == ProductStatus.COMPLETED
        outcome = await client.wait(job_id)
    assert outcome.status == ProductStatus.COMPLETED
    assert "churn" in client.fetch_result(job_id)
    described = await client.temporal.get_workflow_handle(job_id).describe()
    summary = await described.static_summary()
    assert summary == "research_brief for acme, requested by alice"
    runs = [w async for w in client.temporal.list_workflows(f"WorkflowId = '{job_id}'")]
    assert len(runs) == 1


async def test_unknown_job_is_reported_plainly(
    dev_server_env: WorkflowEnvironment, settings: Settings
) -> None:
    client = LanewayClient(dev_server_env.client, settings)
    with pytest.raises(JobNotFoundError, match="no job job-missing"):
        await client.status("job-missing")
    with pytest.raises(JobNotFoundError):
        client.fetch_result("job-missing")
