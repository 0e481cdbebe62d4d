"""What a batch job's ending looks like from the command line, checked against visibility.

A provider batch that fails as a whole ends the job `failed` (not "completed, 0 of N"): `jobs
watch` exits 1, `jobs show` says why and offers archive only, and the workflow closes Failed.
A canceled batch keeps what it did: `laneway results` gives the records that finished before
the cancel, `--errors` the ones that did not, and the report its cost.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from client.jobs import LanewayClient
from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from tests.batch.conftest import provider_batches, records, write_jsonl
from tests.cli.conftest import ALICE, Cli
from workflows.search_attributes import LANEWAY_STATUS

SUBMIT_TRIAGE = (
    *("submit", "batch", "--job-type", "ticket_triage", "--format", "records"),
    *("--model", "gpt-4o-mini", "--prompt-template", "Classify this ticket: {title}"),
    *("--id-field", "id", "--token", ALICE),
)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    # Slow enough per request that a half-done batch can be cancelled while it runs.
    return EmulatorConfig(speed=600.0, batch_seconds_per_request=0.1)


async def submit(cli: Cli, tmp_path: Path, count: int) -> str:
    tickets = write_jsonl(tmp_path / "tickets.jsonl", records(count))
    submitted = await cli(*SUBMIT_TRIAGE[:2], str(tickets), *SUBMIT_TRIAGE[2:])
    assert submitted.code == 0, submitted.err
    return submitted.out.splitlines()[0].strip()


async def closed_execution(temporal: Client, job_id: str) -> WorkflowExecution:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        async for execution in temporal.list_workflows(f"WorkflowId = '{job_id}'"):
            if execution.status not in (None, WorkflowExecutionStatus.RUNNING):
                return execution
        await asyncio.sleep(0.1)
    raise AssertionError(f"{job_id} never showed closed in visibility")


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.usefixtures("worker")
async def test_a_batch_the_provider_fails_as_a_whole_ends_failed_on_every_surface(
    cli: Cli, tmp_path: Path, emulator: EmulatorServer, dev_server_env: WorkflowEnvironment
) -> None:
    emulator.control.add_fault({"kind": "batch_validation_failed"})
    job_id = await submit(cli, tmp_path, 5)

    watched = await cli("jobs", "watch", job_id, "--interval", "0.2")
    assert watched.code == 1, watched.out + watched.err
    assert watched.out.splitlines()[-1].split("  ")[1] == "failed"
    shown = await cli("jobs", "show", job_id, "--json")
    job = shown.json()["job"]  # type: ignore[index]
    assert job["status"] == "failed"
    assert job["reason"].startswith("none of the 5 records succeeded: the provider failed batch")
    assert job["allowed_actions"] == ["archive"], "no retry: the same batch would fail again"

    execution = await closed_execution(dev_server_env.client, job_id)
    assert execution.status == WorkflowExecutionStatus.FAILED
    assert execution.typed_search_attributes.get(LANEWAY_STATUS) == "failed"
    errors = jsonl((await cli("results", job_id, "--errors")).out)
    assert len(errors) == 5 and {e["code"] for e in errors} == {"batch_failed"}


@pytest.mark.usefixtures("worker")
async def test_a_canceled_batch_keeps_its_results_errors_and_cost(
    cli: Cli,
    tmp_path: Path,
    emulator: EmulatorServer,
    laneway: LanewayClient,
    dev_server_env: WorkflowEnvironment,
) -> None:
    # The batch answers half its requests, then waits for its window: cancel it then.
    emulator.control.add_fault({"kind": "batch_expire", "fraction": 0.5})
    job_id = await submit(cli, tmp_path, 40)
    deadline = time.monotonic() + 60
    while (await laneway.batch_status(job_id)).shards_in_flight == 0 or not any(
        b.request_counts and b.request_counts.completed == 20
        for b in await asyncio.to_thread(provider_batches, emulator)
    ):
        assert time.monotonic() < deadline, "the batch never got half done"
        await asyncio.sleep(0.1)

    canceled = await cli("cancel", job_id, "--reason", "wrong prompt", "--token", ALICE, "--json")
    assert canceled.code == 0, canceled.err
    state = canceled.json()
    assert isinstance(state, dict) and state["status"] == "canceled"
    assert state["reason"] == (
        "cancelled by alice: wrong prompt (20 of 40 succeeded, 20 failed, 0 never sent)"
    )
    assert state["report"]["cost_batch_usd"] is not None
    assert state["report"]["records"]["succeeded"] == 20

    results = jsonl((await cli("results", job_id)).out)
    assert len(results) == 20 and all(r["response"] for r in results)
    errors = jsonl((await cli("results", job_id, "--errors")).out)
    assert len(errors) == 20 and {e["code"] for e in errors} == {"batch_cancelled"}
    through_client = await laneway.results(job_id)
    assert len(jsonl(b"".join(through_client.chunks).decode())) == 20
    execution = await closed_execution(dev_server_env.client, job_id)
    assert execution.status == WorkflowExecutionStatus.CANCELED
