"""One client for both lanes: listing by the Laneway search attributes, errors files."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from client.jobs import JobActionRefused, JobSummary, LanewayClient, LanewayClientError
from emulator.server import EmulatorServer
from laneway.background import Actor
from laneway.batch import BatchJobSpec
from laneway.status import ProductStatus
from tests.batch.conftest import classify_template, records, write_jsonl
from tests.client.conftest import REQUESTER, research_brief, wait_for_status


async def listed(client: LanewayClient, expected: set[str], **filters: str) -> list[JobSummary]:
    """list_jobs until it shows exactly `expected` (visibility is eventually consistent)."""
    deadline = time.monotonic() + 20
    while True:
        found = await client.list_jobs(**filters)  # type: ignore[arg-type]
        if {job.job_id for job in found} == expected:
            return found
        assert time.monotonic() < deadline, f"{filters}: {[j.job_id for j in found]}"
        await asyncio.sleep(0.1)


async def test_list_jobs_by_status_lane_workspace_and_type(
    client: LanewayClient, tmp_path: Path
) -> None:
    workspace = f"acme-{uuid.uuid4().hex[:8]}"
    brief = await client.start_background_job(research_brief(workspace=workspace))
    batch = await client.start_batch_job(
        BatchJobSpec(
            job_type="ticket_triage",
            workspace=workspace,
            requested_by=REQUESTER,
            input=client.store_batch_input(write_jsonl(tmp_path / "in.jsonl", records(5))),
            input_format="records",
            template=classify_template(),
        )
    )
    await wait_for_status(client, brief, "needs_review")
    await client.wait(batch)

    both = await listed(client, {brief, batch}, workspace=workspace)
    assert {(job.lane, job.job_type) for job in both} == {
        ("background", "research_brief"),
        ("batch", "ticket_triage"),
    }
    await listed(client, {brief}, workspace=workspace, status="needs_review")
    [done] = await listed(client, {batch}, workspace=workspace, lane="batch")
    assert (
        done.status == "completed" and done.progress is not None and "5 succeeded" in done.progress
    )
    await listed(client, {brief}, workspace=workspace, job_type="research_brief")
    await listed(client, set(), workspace=workspace, status="failed")

    with pytest.raises(LanewayClientError, match="unknown status 'done'; use one of: queued"):
        await client.list_jobs(status="done")
    with pytest.raises(LanewayClientError, match="may not contain quotes"):
        await client.list_jobs(workspace='acme" OR 1=1')

    lines = b"".join((await client.results(batch)).chunks).splitlines()
    assert [json.loads(line)["custom_id"] for line in lines] == [f"rec-{n}" for n in range(5)]
    assert b"".join((await client.results(batch, errors=True)).chunks) == b""
    await client.cancel(brief, Actor(id=REQUESTER, workspace=workspace))


async def test_a_failed_background_job_has_its_failures_as_errors(
    client: LanewayClient, emulator: EmulatorServer
) -> None:
    job_id = f"job-{uuid.uuid4().hex}"
    emulator.control.add_fault(
        {
            "kind": "response_fail",
            "match": {"metadata_key": "laneway_job_id", "metadata_value": job_id},
            "message": "GPU fell over",
        }
    )
    await client.start_background_job(research_brief(), job_id=job_id)
    failed = await wait_for_status(client, job_id, "failed")
    assert failed.allowed_actions == ["retry", "archive"]

    errors = await client.results(job_id, errors=True)
    [line] = [json.loads(line) for line in b"".join(errors.chunks).splitlines()]
    assert line["status"] == ProductStatus.FAILED and "GPU fell over" in line["reason"]
    assert errors.media_type == "application/jsonl"
    archived = await client.archive(job_id, Actor(id=REQUESTER, workspace="acme"), "known outage")
    assert archived.status == ProductStatus.FAILED and archived.allowed_actions == []


async def test_a_provider_event_reaches_the_job_that_owns_the_provider_id(
    client: LanewayClient, dev_server_env: WorkflowEnvironment
) -> None:
    job_id = await client.start_background_job(research_brief())
    view = await wait_for_status(client, job_id, "needs_review")
    [response_id] = view.provider_ids

    assert await client.notify_provider_event("resp_nobody_knows") is None
    assert await client.notify_provider_event(response_id) == job_id
    history = await dev_server_env.client.get_workflow_handle(job_id).fetch_history()
    signals = [
        event.workflow_execution_signaled_event_attributes.signal_name
        for event in history.events
        if event.HasField("workflow_execution_signaled_event_attributes")
    ]
    assert signals == ["provider_event"]

    await client.reject(job_id, Actor(id="rita", workspace="acme", roles=frozenset({"reviewer"})))
    with pytest.raises(JobActionRefused, match="has ended"):
        await client.notify_provider_event(response_id)
