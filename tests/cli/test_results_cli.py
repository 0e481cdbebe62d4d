"""`laneway results` on a job that did not succeed says so, and why, instead of "no output yet"."""

from __future__ import annotations

import uuid

import pytest

from client.jobs import LanewayClient
from emulator.server import EmulatorServer
from laneway.background import Actor
from tests.cli.conftest import Cli
from tests.client.conftest import research_brief, wait_for_status


def _fault(emulator: EmulatorServer, kind: str, job_id: str, **fields: object) -> None:
    match = {"metadata_key": "laneway_job_id", "metadata_value": job_id}
    emulator.control.add_fault({"kind": kind, "match": match, **fields})


@pytest.mark.usefixtures("worker")
async def test_results_of_a_failed_job_say_it_failed_and_why(
    cli: Cli, laneway: LanewayClient, emulator: EmulatorServer
) -> None:
    job_id = f"job-{uuid.uuid4().hex}"
    _fault(emulator, "response_fail", job_id, message="GPU fell over")
    await laneway.start_background_job(research_brief(), job_id=job_id)
    await wait_for_status(laneway, job_id, "failed")

    ran = await cli("results", job_id)
    assert (ran.code, ran.out) == (1, "")
    assert ran.err == (
        f"laneway: job {job_id} failed: the provider failed the response (server_error): "
        "GPU fell over; it has no output\n"
    )
    errors = await cli("results", job_id, "--errors")
    assert errors.code == 0 and "GPU fell over" in errors.out, "the errors are the answer"


@pytest.mark.usefixtures("worker")
async def test_results_of_a_job_that_failed_with_partial_output_give_it_and_say_why(
    cli: Cli, laneway: LanewayClient, emulator: EmulatorServer
) -> None:
    job_id = f"job-{uuid.uuid4().hex}"
    _fault(emulator, "response_incomplete", job_id)
    await laneway.start_background_job(research_brief(review_policy="auto"), job_id=job_id)
    failed = await wait_for_status(laneway, job_id, "failed")
    assert failed.reason is not None

    ran = await cli("results", job_id)
    assert ran.code == 1
    assert ran.out, "the partial output is written"
    assert ran.err == (
        f"laneway: job {job_id} failed: {failed.reason}; this is the output it left\n"
    )


@pytest.mark.usefixtures("worker")
async def test_results_of_a_job_still_running_say_where_it_is(
    cli: Cli, laneway: LanewayClient, emulator: EmulatorServer
) -> None:
    job_id = f"job-{uuid.uuid4().hex}"
    _fault(emulator, "response_stick", job_id)
    await laneway.start_background_job(research_brief(), job_id=job_id)
    await wait_for_status(laneway, job_id, "running")

    ran = await cli("results", job_id)
    assert (ran.code, ran.out) == (1, "")
    assert ran.err.startswith(f"laneway: job {job_id} has no output yet: it is running")
    await laneway.cancel(job_id, Actor(id="alice", workspace="acme"), "done looking")
