"""`laneway jobs show` tells the reviewer where an approved job delivers; bad ids are refused."""

from __future__ import annotations

import pytest

from client.jobs import LanewayClient
from laneway.jobs import PostWebhook
from tests.cli.conftest import ALICE, Cli
from tests.cli.test_jobs_cli import SUBMIT_BRIEF
from tests.client.conftest import REVIEWER, research_brief, wait_for_status
from tests.conftest import TEST_WEBHOOK_SECRET_REF


@pytest.mark.usefixtures("worker")
async def test_jobs_show_names_the_side_effect_and_its_destination(
    cli: Cli, laneway: LanewayClient
) -> None:
    effect = PostWebhook(
        url="http://127.0.0.1:9/hooks/in?sig=hidden", secret_ref=TEST_WEBHOOK_SECRET_REF
    )
    job_id = await laneway.start_background_job(research_brief(side_effect=effect))
    await wait_for_status(laneway, job_id, "needs_review")
    shown = await cli("jobs", "show", job_id)
    assert shown.code == 0, shown.err
    assert "side effect:   post_webhook to http://127.0.0.1:9/hooks/in" in shown.out
    assert "hidden" not in shown.out
    as_json = await cli("jobs", "show", job_id, "--json")
    details = as_json.json()
    assert isinstance(details, dict)
    assert details["side_effect"] == {
        "kind": "post_webhook",
        "destination": "http://127.0.0.1:9/hooks/in",
    }
    await laneway.reject(job_id, REVIEWER, "not now")


async def test_a_bad_job_id_is_one_line_and_starts_nothing(cli: Cli) -> None:
    submitted = await cli(*SUBMIT_BRIEF, "--token", ALICE, "--job-id", "../escape")
    assert submitted.code == 2
    assert "is not allowed" in submitted.err and "Traceback" not in submitted.err
    shown = await cli("jobs", "show", "a/b")
    assert shown.code == 2, "a malformed id is the command's to fix"
    assert shown.err.startswith("laneway: job id 'a/b' is not allowed")
    assert "Traceback" not in shown.err
