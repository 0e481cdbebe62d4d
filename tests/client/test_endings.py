"""Every product ending, seen through Temporal visibility with the close status that matches it.

completed -> Completed; failed and expired -> Failed (error type JobFailed / JobExpired, the
reason as its message, the outcome in its details); canceled and rejected -> Canceled. The
outcome stays readable through the client whatever the close status, and an ended job offers
archive only, as a ledger action, once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from client.jobs import JobActionRefused, LanewayClient
from emulator.server import EmulatorServer
from laneway.background import Actor, JobOutcome
from laneway.jobs import ReviewPolicy
from laneway.status import ProductStatus
from store.ledger import Ledger
from tests.client.conftest import REQUESTER, REVIEWER, WORKSPACE, research_brief, wait_for_status
from workflows.search_attributes import LANEWAY_STATUS

OPERATOR = Actor(id="olga", workspace=WORKSPACE, roles=frozenset({"operator"}))
Closed = WorkflowExecutionStatus

# ending -> (product status, Temporal close status, failure type)
ENDINGS = {
    "completed": (ProductStatus.COMPLETED, Closed.COMPLETED, None),
    "failed": (ProductStatus.FAILED, Closed.FAILED, "JobFailed"),
    "expired": (ProductStatus.EXPIRED, Closed.FAILED, "JobExpired"),
    "canceled": (ProductStatus.CANCELED, Closed.CANCELED, None),
    "rejected": (ProductStatus.CANCELED, Closed.CANCELED, None),
}


async def end_a_job(client: LanewayClient, emulator: EmulatorServer, ending: str) -> str:
    """Start a background job and bring it to `ending` the way a user would."""
    job_id = f"job-{uuid.uuid4().hex}"
    if ending == "completed":
        await client.start_background_job(
            research_brief(review_policy=ReviewPolicy.AUTO), job_id=job_id
        )
    elif ending == "failed":
        emulator.control.add_fault(
            {
                "kind": "response_fail",
                "match": {"metadata_key": "laneway_job_id", "metadata_value": job_id},
                "message": "GPU fell over",
            }
        )
        await client.start_background_job(research_brief(), job_id=job_id)
        await wait_for_status(client, job_id, "failed")  # held, open, for a retry
        await client.archive(job_id, OPERATOR, "known outage")
    elif ending == "expired":
        spec = research_brief(review_deadline=timedelta(seconds=1))
        await client.start_background_job(spec, job_id=job_id)
    elif ending == "canceled":
        await client.start_background_job(research_brief(), job_id=job_id)
        await client.cancel(job_id, Actor(id=REQUESTER, workspace=WORKSPACE), "not needed")
    else:
        await client.start_background_job(research_brief(), job_id=job_id)
        await wait_for_status(client, job_id, "needs_review")
        await client.reject(job_id, REVIEWER, "too thin")
    return job_id


async def closed_execution(temporal: Client, job_id: str) -> WorkflowExecution:
    """The job's visibility record once it shows the workflow closed (visibility lags)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        async for execution in temporal.list_workflows(f"WorkflowId = '{job_id}'"):
            if execution.status not in (None, Closed.RUNNING):
                return execution
        await asyncio.sleep(0.1)
    raise AssertionError(f"{job_id} never showed closed in visibility")


@pytest.mark.parametrize("ending", list(ENDINGS))
async def test_each_ending_closes_with_the_status_that_matches_it(
    client: LanewayClient,
    emulator: EmulatorServer,
    dev_server_env: WorkflowEnvironment,
    ending: str,
) -> None:
    product_status, close_status, failure_type = ENDINGS[ending]
    job_id = await end_a_job(client, emulator, ending)
    outcome = await client.wait(job_id)
    execution = await closed_execution(dev_server_env.client, job_id)

    assert isinstance(outcome, JobOutcome) and outcome.status == product_status
    assert execution.status == close_status
    assert execution.typed_search_attributes.get(LANEWAY_STATUS) == product_status.value
    if failure_type is not None:
        with pytest.raises(WorkflowFailureError) as failure:
            await dev_server_env.client.get_workflow_handle(job_id).result()
        cause = failure.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == failure_type
        assert cause.message == outcome.reason
    if ending == "rejected":
        assert outcome.reason == "rejected by rita: too thin"

    # The client, the ledger and the Web UI's current details agree on what is left to do.
    view = await client.status(job_id)
    assert view.status == product_status and not view.facts.open
    record = Ledger.from_url(client.settings.ledger_url).get_job(job_id)
    assert record is not None and record.ended_at is not None
    expected = [] if ending == "failed" else ["archive"]  # the failed job was archived
    assert view.allowed_actions == record.allowed_actions() == expected


async def test_archive_of_an_ended_job_is_a_ledger_action_taken_once(
    client: LanewayClient, emulator: EmulatorServer
) -> None:
    job_id = await end_a_job(client, emulator, "completed")
    await client.wait(job_id)
    archived = await client.archive(job_id, OPERATOR, "done with it")
    assert archived.status == ProductStatus.COMPLETED and archived.allowed_actions == []
    assert (await client.status(job_id)).facts.archived

    with pytest.raises(JobActionRefused, match="already archived"):
        await client.archive(job_id, OPERATOR, "again")
    with pytest.raises(JobActionRefused, match="has ended"):
        await client.retry(job_id, OPERATOR, "")
    kinds = [event.kind for event in client.timeline(job_id)]
    assert kinds.count("archived") == 1
