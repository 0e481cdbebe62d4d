"""The Python client for batch jobs: input streamed to the store, start, follow, results."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from client.jobs import LanewayClient
from emulator.server import EmulatorServer
from laneway.batch import BatchJobSpec, BatchProgress
from laneway.settings import Settings
from laneway.status import ProductStatus
from tests.batch.conftest import classify_template, records, write_jsonl
from tests.conftest import WorkerFactory


def _spec(laneway: LanewayClient, path: Path) -> BatchJobSpec:
    return BatchJobSpec(
        job_type="ticket_triage",
        workspace="acme",
        requested_by="alice",
        input=laneway.store_batch_input(path),
        input_format="records",
        template=classify_template(),
    )


async def test_start_twice_follow_and_read_results(
    client: LanewayClient, emulator: EmulatorServer, tmp_path: Path
) -> None:
    spec = _spec(client, write_jsonl(tmp_path / "in.jsonl", records(30)))
    job_id = await client.start_batch_job(spec, job_id="tickets-2026-11-22")
    assert await client.start_batch_job(spec, job_id="tickets-2026-11-22") == job_id
    outcome = await client.wait_batch(job_id)
    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    view = await client.batch_status(job_id)
    assert view.records.total == view.records.succeeded == 30 and view.round == 1
    assert outcome.report is not None
    lines = b"".join(client.read_artifact(outcome.report.results)).splitlines()
    assert [json.loads(line)["custom_id"] for line in lines] == [f"rec-{n}" for n in range(30)]
    assert emulator.control.stats()["counts"]["batches"] == 1, "the second start began nothing"


async def test_workspace_threshold_holds_the_plan_for_review(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    strict = settings.model_copy(update={"batch_plan_approval_usd": {"acme": Decimal("0")}})
    laneway = LanewayClient(dev_server_env.client, strict)
    spec = _spec(laneway, write_jsonl(tmp_path / "in.jsonl", records(30)))
    async with laneway_worker(dev_server_env):
        job_id = await laneway.start_batch_job(spec)
        view = await _wait_for(laneway, job_id, ProductStatus.NEEDS_REVIEW)
    laneway.close()
    assert view.reason is not None and "above the workspace's $0" in view.reason
    assert view.estimate is not None and view.estimate.cost_batch_usd is not None
    assert emulator.control.stats()["counts"]["batches"] == 0


async def _wait_for(laneway: LanewayClient, job_id: str, status: str) -> BatchProgress:
    deadline = time.monotonic() + 30
    view = await laneway.batch_status(job_id)
    while view.status != status:
        assert time.monotonic() < deadline, f"never reached {status}; last {view}"
        await asyncio.sleep(0.05)
        view = await laneway.batch_status(job_id)
    return view
