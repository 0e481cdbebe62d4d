"""Costs as people and scripts read them from `laneway`: `0`, never the ledger's `0E-10`."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from client.jobs import LanewayClient
from emulator.server import EmulatorServer
from laneway.batch import BatchJobSpec
from tests.batch.conftest import classify_template, records, write_jsonl
from tests.cli.conftest import Cli
from tests.client.conftest import research_brief, wait_for_status

# What a dollar amount looks like in JSON: digits, and no trailing zero after a decimal point.
PLAIN_AMOUNT = re.compile(r"^(0|[1-9]\d*)(\.\d*[1-9])?$")


async def _shown(cli: Cli, job_id: str) -> dict[str, Any]:
    ran = await cli("jobs", "show", job_id, "--json")
    assert ran.code == 0, ran.err
    document = ran.json()
    assert isinstance(document, dict)
    job: dict[str, Any] = document["job"]
    return job


@pytest.mark.usefixtures("worker")
async def test_a_batch_whose_records_all_failed_costs_zero(
    cli: Cli, laneway: LanewayClient, emulator: EmulatorServer, tmp_path: Path
) -> None:
    job_id = f"job-{uuid.uuid4().hex}"
    emulator.control.add_fault(
        {
            "kind": "batch_fail_fraction",
            "match": {"metadata_key": "laneway_job_id", "metadata_value": job_id},
            "fraction": 1.0,
            "status_code": 500,
        }
    )
    spec = BatchJobSpec(
        job_type="ticket_triage",
        workspace="acme",
        requested_by="alice",
        input=laneway.store_batch_input(write_jsonl(tmp_path / "in.jsonl", records(3))),
        input_format="records",
        template=classify_template(),
        max_rounds=1,
    )
    await laneway.start_batch_job(spec, job_id=job_id)
    deadline = time.monotonic() + 60
    while (job := await _shown(cli, job_id))["status"] != "failed":
        assert time.monotonic() < deadline, f"never failed: {job}"
        await asyncio.sleep(0.1)

    assert job["records"]["failed"] == 3 and job["report"] is not None
    assert job["cost_usd"] == "0", "no token was used: a zero cost is written 0"
    report = job["report"]
    assert (report["cost_batch_usd"], report["cost_standard_usd"]) == ("0", "0")
    for amount in (job["estimate"]["cost_batch_usd"], job["estimate"]["cost_standard_usd"]):
        assert PLAIN_AMOUNT.match(amount), amount

    table = await cli("jobs", "show", job_id)
    assert "cost:          $0\n" in table.out
    assert "E-" not in table.out and "E+" not in table.out


@pytest.mark.usefixtures("worker")
async def test_a_cost_shows_no_trailing_zeros(cli: Cli, laneway: LanewayClient) -> None:
    job_id = await laneway.start_background_job(research_brief(review_policy="auto"))
    await wait_for_status(laneway, job_id, "completed")

    cost = (await _shown(cli, job_id))["cost_usd"]
    assert isinstance(cost, str) and PLAIN_AMOUNT.match(cost), cost
    assert cost != "0", "the emulator's tokens cost something"
    table = await cli("jobs", "show", job_id)
    assert f"cost:          ${cost}\n" in table.out
