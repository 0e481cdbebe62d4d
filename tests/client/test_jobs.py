"""The Python client against a real Temporal dev server, Laneway's worker and the emulator."""

from __future__ import annotations

import pytest
from temporalio.testing import WorkflowEnvironment

from client.jobs import (
    JobActionRefused,
    JobNotFoundError,
    LanewayClient,
    ResultNotReady,
)
from laneway.background import Actor
from laneway.jobs import Usage
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.artifacts import ArtifactStore
from store.ledger import Ledger, NewJob, upgrade_to_head
from tests.client.conftest import (
    BRIEF,
    REQUESTER,
    REVIEWER,
    WORKSPACE,
    research_brief,
    wait_for_status,
)


async def test_start_follow_approve_and_fetch_the_result(client: LanewayClient) -> None:
    job_id = await client.start_background_job(research_brief())
    assert job_id.startswith("job-")

    first = await client.status(job_id)
    assert (first.job_type, first.workspace, first.requested_by) == (
        "research_brief",
        WORKSPACE,
        REQUESTER,
    )
    in_review = await wait_for_status(client, job_id, "needs_review")
    assert in_review.allowed_actions == ["approve", "reject", "cancel", "escalate"]
    assert in_review.cost_usd is not None and in_review.cost_usd > 0

    approved = await client.approve(job_id, REVIEWER, "reads well")
    assert approved.status == ProductStatus.COMPLETED
    outcome = await client.wait_background(job_id)
    assert (outcome.status, outcome.reason) == (ProductStatus.COMPLETED, "approved")
    assert outcome.result is not None and outcome.result.usage.output_tokens > 0
    assert client.fetch_result(job_id) == "Sentiment: positive. Summary: " + BRIEF


async def test_refusals_carry_the_workflows_own_words(client: LanewayClient) -> None:
    job_id = await client.start_background_job(research_brief())
    await wait_for_status(client, job_id, "needs_review")

    requester = Actor(id=REQUESTER, workspace=WORKSPACE, roles=frozenset({"reviewer"}))
    with pytest.raises(JobActionRefused, match=r"^alice requested this job and cannot approve it$"):
        await client.approve(job_id, requester)
    outsider = Actor(id="oscar", workspace="globex", roles=frozenset({"reviewer"}))
    with pytest.raises(JobActionRefused, match=r"^oscar is not a reviewer in workspace acme$"):
        await client.reject(job_id, outsider)
    assert (await client.status(job_id)).status == ProductStatus.NEEDS_REVIEW

    await client.reject(job_id, REVIEWER, "off topic")
    with pytest.raises(JobActionRefused, match=rf"^job {job_id} has ended \(canceled\)"):
        await client.approve(job_id, REVIEWER)


async def test_unknown_job_id_is_reported_plainly(client: LanewayClient) -> None:
    with pytest.raises(JobNotFoundError, match=r"^no job job-missing$"):
        await client.status("job-missing")
    with pytest.raises(JobNotFoundError, match=r"^no job job-missing$"):
        await client.approve("job-missing", REVIEWER)
    with pytest.raises(JobNotFoundError, match=r"^no job job-missing$"):
        await client.wait("job-missing")
    with pytest.raises(JobNotFoundError, match=r"^no job job-missing in the result store$"):
        client.fetch_result("job-missing")


async def test_starting_one_job_id_twice_runs_one_workflow(
    client: LanewayClient, dev_server_env: WorkflowEnvironment
) -> None:
    job_id = await client.start_background_job(research_brief())
    handle = dev_server_env.client.get_workflow_handle(job_id)
    run_id = (await handle.describe()).run_id

    assert await client.start_background_job(research_brief(), job_id=job_id) == job_id
    await wait_for_status(client, job_id, "needs_review")
    await client.approve(job_id, REVIEWER)
    await client.wait(job_id)
    # Once the job has ended too: the id stays taken instead of starting a second job.
    assert await client.start_background_job(research_brief(), job_id=job_id) == job_id

    assert (await handle.describe()).run_id == run_id
    runs = [run async for run in dev_server_env.client.list_workflows(f"WorkflowId = '{job_id}'")]
    assert [run.run_id for run in runs] == [run_id]


async def test_web_ui_summary_names_the_job_without_its_prompt(
    client: LanewayClient, dev_server_env: WorkflowEnvironment
) -> None:
    job_id = await client.start_background_job(research_brief("Top secret churn figures."))
    described = await dev_server_env.client.get_workflow_handle(job_id).describe()
    assert await described.static_summary() == "research_brief in acme, requested by alice"
    await client.cancel(job_id, Actor(id=REQUESTER, workspace=WORKSPACE))


async def test_fetch_result_reads_large_outputs_from_the_artifact_store(
    dev_server_env: WorkflowEnvironment, settings: Settings
) -> None:
    upgrade_to_head(settings.ledger_url)
    ledger = Ledger.from_url(settings.ledger_url)
    spec = research_brief()
    ledger.record_job(NewJob.background("job-large", "job-large", spec))
    ledger.record_job(NewJob.background("job-pending", "job-pending", spec))
    long_text = "A long brief. " * 1000
    ref = ArtifactStore(settings.artifacts_path).put_bytes(long_text.encode(), "text/plain")
    ledger.record_result(
        "job-large",
        1,
        usage=Usage(),
        model="gpt-4o-mini",
        tier="standard",
        cost_usd=None,
        output=ref,
    )
    client = LanewayClient(dev_server_env.client, settings)

    assert client.fetch_result("job-large") == long_text
    with pytest.raises(ResultNotReady, match="job job-pending has no output yet"):
        client.fetch_result("job-pending")
    client.close()


async def test_large_input_text_is_stored_and_never_enters_history(
    client: LanewayClient,
) -> None:
    from laneway.background import BackgroundJobInput
    from laneway.jobs import INLINE_TEXT_MAX_CHARS, JobSpec
    from tests.payload_keys import workers_data_converter

    large = ("Quarterly churn notes, line by line. " * 2000)[: INLINE_TEXT_MAX_CHARS + 10]
    small = client.job_input(model="gpt-4o-mini", text=BRIEF)
    assert (small.text, small.artifact) == (BRIEF, None)
    job_input = client.job_input(model="gpt-4o-mini", text=large, max_output_tokens=500)
    assert job_input.text is None and job_input.artifact is not None
    assert job_input.max_output_tokens == 500
    spec = JobSpec(
        job_type="research_brief", workspace=WORKSPACE, requested_by=REQUESTER, input=job_input
    )
    job_id = await client.start_background_job(spec)
    outcome = await client.wait_background(job_id)
    assert outcome.status == ProductStatus.COMPLETED
    assert "Quarterly churn notes" in client.fetch_result(job_id)

    history = await client.temporal.get_workflow_handle(job_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [sent] = await workers_data_converter().decode(started.input.payloads, [BackgroundJobInput])
    assert sent.spec.input.artifact == job_input.artifact and sent.spec.input.text is None
