"""`laneway` job commands against a real Temporal dev server, Laneway's worker and the emulator."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from client.cli import main
from client.jobs import LanewayClient
from tests.batch.conftest import records, write_jsonl
from tests.cli.conftest import ALICE, ALICE_AS_REVIEWER, RITA, UNREACHABLE, Cli, Ran
from tests.client.conftest import BRIEF, wait_for_status

SUBMIT_BRIEF = (
    *("submit", "background", "--job-type", "research_brief", "--model", "gpt-4o-mini"),
    *("--text", BRIEF, "--review", "required"),
)


async def submit_brief(cli: Cli) -> str:
    ran = await cli(*SUBMIT_BRIEF, "--token", ALICE, "--json")
    assert ran.code == 0, ran.err
    submitted = ran.json()
    assert isinstance(submitted, dict) and submitted["lane"] == "background"
    return str(submitted["job_id"])


async def listed(cli: Cli, job_id: str, *filters: str) -> list[dict[str, Any]]:
    """`jobs list --json` until it shows the job: visibility is eventually consistent."""
    deadline = time.monotonic() + 10
    while True:
        ran = await cli("jobs", "list", *filters, "--json")
        assert ran.code == 0, ran.err
        jobs = ran.json()
        assert isinstance(jobs, list)
        if any(job["job_id"] == job_id for job in jobs) or time.monotonic() > deadline:
            return jobs
        await asyncio.sleep(0.2)


@pytest.mark.usefixtures("worker")
async def test_review_a_background_job_from_the_command_line(
    cli: Cli, laneway: LanewayClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = await submit_brief(cli)
    await wait_for_status(laneway, job_id, "needs_review")

    jobs = await listed(cli, job_id, "--status", "needs_review", "--workspace", "acme")
    [job] = [job for job in jobs if job["job_id"] == job_id]
    assert (job["lane"], job["status"], job["job_type"]) == (
        "background",
        "needs_review",
        "research_brief",
    )
    table = await cli("jobs", "list", "--status", "needs_review")
    assert table.out.startswith("JOB ID") and job_id in table.out

    shown = await cli("jobs", "show", job_id)
    assert shown.code == 0, shown.err
    assert "status:        needs_review" in shown.out
    assert "actions:       approve, reject, cancel, escalate" in shown.out
    assert "requested by:  alice" in shown.out
    assert "TIME" in shown.out and "-> needs_review" in shown.out
    assert "created         -> queued" in shown.out

    not_a_reviewer = await cli("approve", job_id, "--note", "mine", "--token", ALICE)
    assert (not_a_reviewer.code, not_a_reviewer.err) == (
        1,
        "laneway: alice is not a reviewer in workspace acme\n",
    )
    own_job = await cli("approve", job_id, "--note", "mine", "--token", ALICE_AS_REVIEWER)
    assert own_job.code == 1
    assert "requested this job and cannot approve" in own_job.err
    assert "Traceback" not in own_job.err

    monkeypatch.setenv("LANEWAY_TOKEN", RITA)  # the variable, as an operator's shell has it
    approved = await cli("approve", job_id, "--note", "reads well")
    assert (approved.code, approved.out) == (0, f"{job_id}: completed (approved); next: archive\n")

    output = await cli("results", job_id)
    assert (output.code, output.out) == (0, "Sentiment: positive. Summary: " + BRIEF)
    watched = await cli("jobs", "watch", job_id)
    assert watched.code == 0 and "completed" in watched.out

    details = await cli("jobs", "show", job_id, "--json")
    document = details.json()
    assert isinstance(document, dict) and document["job"]["status"] == "completed"
    assert any(
        (event["kind"], event["actor"], event["note"]) == ("approved", "rita", "reads well")
        for event in document["timeline"]
    ), document["timeline"]


@pytest.mark.usefixtures("worker")
async def test_cancel_with_a_reason_and_watch_the_end(cli: Cli) -> None:
    job_id = await submit_brief(cli)
    canceled = await cli("cancel", job_id, "--reason", "wrong brief", "--token", ALICE, "--json")
    assert canceled.code == 0, canceled.err
    state = canceled.json()
    assert isinstance(state, dict) and state["status"] == "canceled"

    watched = await cli("jobs", "watch", job_id, "--interval", "0.1")
    assert watched.code == 1 and "canceled" in watched.out
    again = await cli("cancel", job_id, "--reason", "twice", "--token", ALICE)
    assert again.code == 1 and again.err.startswith(f"laneway: job {job_id} has ended")


@pytest.mark.usefixtures("worker")
async def test_batch_of_records_from_file_to_results(cli: Cli, tmp_path: Path) -> None:
    tickets = write_jsonl(tmp_path / "tickets.jsonl", records(5))
    submitted = await cli(
        *("submit", "batch", str(tickets), "--job-type", "ticket_triage", "--format", "records"),
        *("--model", "gpt-4o-mini", "--prompt-template", "Classify this ticket: {title}"),
        *("--id-field", "id", "--token", ALICE),
    )
    assert submitted.code == 0, submitted.err
    job_id = submitted.out.strip()

    watched = await cli("jobs", "watch", job_id, "--interval", "0.2")
    assert watched.code == 0, watched.out + watched.err
    assert watched.out.splitlines()[-1].split("  ")[1:3] == [
        "completed",
        "5/5 succeeded, 0 failed, 0 pending, round 1",
    ]
    shown = await cli("jobs", "show", job_id)
    assert "records:       5 total, 5 succeeded, 0 failed (0 retryable), 0 pending" in shown.out

    results = await cli("results", job_id)
    lines = [json.loads(line) for line in results.out.splitlines()]
    assert [line["custom_id"] for line in lines] == [f"rec-{n}" for n in range(5)]
    errors_file = tmp_path / "errors.jsonl"
    errors = await cli("results", job_id, "--errors", "--output", str(errors_file))
    assert errors.code == 0 and errors.out.startswith("wrote ")
    assert errors_file.read_bytes() == b""


async def test_an_unknown_job_is_reported_plainly(cli: Cli) -> None:
    for command in (("jobs", "show"), ("jobs", "watch"), ("results",)):
        ran = await cli(*command, "job-missing")
        assert (ran.code, ran.err) == (1, "laneway: no job job-missing\n")
    ran = await cli("archive", "job-missing", "--token", RITA)
    assert (ran.code, ran.err) == (1, "laneway: no job job-missing\n")


async def test_actions_and_submits_need_a_known_token(cli: Cli) -> None:
    missing = await cli("approve", "job-1", "--note", "ok")
    assert missing.code == 2
    assert "set LANEWAY_TOKEN" in missing.err and "LANEWAY_API_TOKENS" in missing.err
    unknown = await cli(*SUBMIT_BRIEF, "--token", "tok-nobody")
    assert unknown.code == 2 and "not a configured API token" in unknown.err
    assert "tok-nobody" not in unknown.err, "a token is a secret: never echo it"


async def test_bad_flags_stop_before_anything_is_sent(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Nothing listens here: reaching Temporal would fail with exit 1 instead of 2.
    monkeypatch.setenv("LANEWAY_TEMPORAL_ADDRESS", UNREACHABLE)
    bad_type = [*SUBMIT_BRIEF, "--token", ALICE]
    bad_type[bad_type.index("research_brief")] = "Bad Type"
    ran = await cli(*bad_type)
    assert ran.code == 2 and ran.out == ""
    assert ran.err.startswith(
        "laneway: invalid job: job_type (--job-type): String should match pattern"
    )

    no_file = [*SUBMIT_BRIEF, "--token", ALICE]
    no_file[no_file.index("--text") : no_file.index("--text") + 2] = ["--input-file", "gone.txt"]
    ran = await cli(*no_file)
    assert ran.code == 2 and ran.err.startswith("laneway: cannot read --input-file gone.txt")

    tickets = write_jsonl(tmp_path / "tickets.jsonl", records(2))
    batch = ("submit", "batch", str(tickets), "--job-type", "triage", "--token", ALICE)
    no_model = await cli(*batch, "--format", "records", "--input-field", "title")
    assert (no_model.code, no_model.err) == (
        2,
        "laneway: invalid job: template.model (--model): Field required\n",
    )
    stray = await cli(*batch, "--model", "gpt-4o-mini")
    assert stray.code == 2 and "--model only apply to --format records" in stray.err
    assert not list((tmp_path / "var").glob("artifacts/**/*.jsonl")), "no input was stored"

    with pytest.raises(SystemExit) as usage:
        await asyncio.to_thread(main, ["jobs", "list", "--status", "sleeping"])
    assert usage.value.code == 2


async def test_an_unreachable_temporal_is_one_plain_line(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANEWAY_TEMPORAL_ADDRESS", UNREACHABLE)
    ran: Ran = await cli("jobs", "list")
    assert (ran.code, ran.err) == (
        1,
        f"laneway: cannot reach Temporal at {UNREACHABLE}: start it (`laneway dev`) "
        "or set LANEWAY_TEMPORAL_ADDRESS\n",
    )


@pytest.mark.usefixtures("worker")
async def test_a_large_input_file_goes_in_as_an_artifact(
    cli: Cli, laneway: LanewayClient, tmp_path: Path
) -> None:
    from laneway.background import BackgroundJobInput
    from laneway.jobs import INLINE_TEXT_MAX_CHARS
    from tests.payload_keys import workers_data_converter

    large = tmp_path / "contract.txt"
    large.write_text(("Clause: the supplier keeps the data. " * 2000)[: INLINE_TEXT_MAX_CHARS + 1])
    argv = list(SUBMIT_BRIEF)
    argv[argv.index("--text") : argv.index("--text") + 2] = ["--input-file", str(large)]
    ran = await cli(*argv, "--token", ALICE, "--json")
    assert ran.code == 0, ran.err
    job_id = str(ran.json()["job_id"])  # type: ignore[index]
    await wait_for_status(laneway, job_id, "needs_review")
    history = await laneway.temporal.get_workflow_handle(job_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [sent] = await workers_data_converter().decode(started.input.payloads, [BackgroundJobInput])
    assert sent.spec.input.text is None and sent.spec.input.artifact is not None
    assert sent.spec.input.artifact.size_bytes == large.stat().st_size
