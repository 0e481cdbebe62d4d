"""`laneway jobs list --json` gives a batch job's progress as numbers; the table tells it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.batch.conftest import records, write_jsonl
from tests.cli.conftest import ALICE, Cli


async def _listed_until(cli: Cli, job_id: str, done: Any) -> dict[str, Any]:
    """`jobs list --json` until the job's entry satisfies `done`: visibility lags a little."""
    deadline = time.monotonic() + 20
    while True:
        ran = await cli("jobs", "list", "--lane", "batch", "--json")
        assert ran.code == 0, ran.err
        jobs = ran.json()
        assert isinstance(jobs, list)
        found = [job for job in jobs if job["job_id"] == job_id]
        if found and done(found[0]):
            entry: dict[str, Any] = found[0]
            return entry
        assert time.monotonic() < deadline, f"last listed: {found}"
        await asyncio.sleep(0.2)


@pytest.mark.usefixtures("worker")
async def test_a_finished_batch_job_is_listed_with_its_record_counts(
    cli: Cli, tmp_path: Path
) -> None:
    tickets = write_jsonl(tmp_path / "tickets.jsonl", records(5))
    submitted = await cli(
        *("submit", "batch", str(tickets), "--job-type", "ticket_triage", "--format", "records"),
        *("--model", "gpt-4o-mini", "--prompt-template", "Classify this ticket: {title}"),
        *("--token", ALICE),
    )
    assert submitted.code == 0, submitted.err
    job_id = submitted.out.strip()
    watched = await cli("jobs", "watch", job_id, "--interval", "0.2")
    assert watched.code == 0, watched.out + watched.err

    job = await _listed_until(cli, job_id, lambda job: job["status"] == "completed")
    assert job["records"] == {"total": 5, "succeeded": 5, "failed": 0}
    assert "progress" not in job, "the text for people stays in the table"

    table = await cli("jobs", "list", "--lane", "batch")
    [row] = [line for line in table.out.splitlines() if line.startswith(job_id)]
    assert "5 succeeded" in row


@pytest.mark.usefixtures("worker")
async def test_a_background_job_has_no_record_counts(cli: Cli) -> None:
    submitted = await cli(
        *("submit", "background", "--job-type", "research_brief", "--model", "gpt-4o-mini"),
        *("--text", "Brief on churn.", "--token", ALICE),
    )
    assert submitted.code == 0, submitted.err
    job_id = submitted.out.strip()
    await cli("jobs", "watch", job_id, "--interval", "0.2")

    deadline = time.monotonic() + 20
    while True:
        listed = (await cli("jobs", "list", "--lane", "background", "--json")).json()
        assert isinstance(listed, list)
        found = [job for job in listed if job["job_id"] == job_id]
        if found or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert [job["records"] for job in found] == [None]
