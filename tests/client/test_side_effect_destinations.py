"""Starting a job checks its id and its side effect's destination before anything starts, and
the reviewer sees where an approved job will deliver (issue 11, Deliver 1)."""

from __future__ import annotations

import pytest
from temporalio.testing import WorkflowEnvironment

from client.jobs import JobNotFoundError, JobRequestRefused, LanewayClient, SideEffectShown
from laneway.jobs import DeliverToOutbox, PostWebhook
from tests.client.conftest import REVIEWER, research_brief, wait_for_status
from tests.conftest import TEST_WEBHOOK_SECRET_REF


async def nothing_started(env: WorkflowEnvironment, job_id: str) -> bool:
    escaped = job_id.replace("'", "\\'")
    runs = [run async for run in env.client.list_workflows(f"WorkflowId = '{escaped}'")]
    return runs == []


@pytest.mark.parametrize("job_id", ["../x", "a/b", "../../etc/passwd", "a b", "-x"])
async def test_a_bad_job_id_is_refused_before_anything_starts(
    client: LanewayClient, dev_server_env: WorkflowEnvironment, job_id: str
) -> None:
    with pytest.raises(JobRequestRefused, match="is not allowed: 1-128 characters"):
        await client.start_background_job(research_brief(), job_id=job_id)
    assert await nothing_started(dev_server_env, job_id)
    with pytest.raises(JobNotFoundError, match="is not allowed"):
        await client.status(job_id)


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://hooks.example.com/in", "must use https"),
        ("https://169.254.169.254/latest/meta-data", "internal address"),
        ("https://10.1.2.3/in", "internal address"),
        ("https://192.168.0.10/in", "internal address"),
        ("https://[::ffff:10.0.0.1]/in", "internal address"),
        ("https://[fd00:ec2::254]/in", "internal address"),
        ("https://metadata.google.internal/x", "internal address"),
    ],
)
async def test_webhook_targets_are_checked_before_anything_starts(
    client: LanewayClient, dev_server_env: WorkflowEnvironment, url: str, said: str
) -> None:
    spec = research_brief(side_effect=PostWebhook(url=url, secret_ref=TEST_WEBHOOK_SECRET_REF))
    with pytest.raises(JobRequestRefused, match=said):
        await client.start_background_job(spec, job_id="job-refused-target")
    assert await nothing_started(dev_server_env, "job-refused-target")


async def test_an_unknown_secret_name_is_refused_before_anything_starts(
    client: LanewayClient,
) -> None:
    spec = research_brief(
        side_effect=PostWebhook(url="https://hooks.example.com/in", secret_ref="nobody-knows")
    )
    with pytest.raises(JobRequestRefused, match="'nobody-knows' names no secret"):
        await client.start_background_job(spec)


async def test_the_reviewer_sees_the_destination_before_approving(client: LanewayClient) -> None:
    outbox = research_brief(side_effect=DeliverToOutbox(path="acme/briefs"))
    job_id = await client.start_background_job(outbox)
    await wait_for_status(client, job_id, "needs_review")
    details = await client.details(job_id)
    assert details.side_effect == SideEffectShown(
        kind="deliver_to_outbox", destination="outbox:acme/briefs"
    )
    await client.reject(job_id, REVIEWER, "not now")

    webhook = research_brief(
        side_effect=PostWebhook(
            url="http://127.0.0.1:9/hooks?token=hidden", secret_ref=TEST_WEBHOOK_SECRET_REF
        )
    )
    job_id = await client.start_background_job(webhook)
    await wait_for_status(client, job_id, "needs_review")
    details = await client.details(job_id)
    assert details.side_effect == SideEffectShown(
        kind="post_webhook", destination="http://127.0.0.1:9/hooks"
    )
    assert "hidden" not in details.model_dump_json()
    await client.reject(job_id, REVIEWER, "not now")
