"""A canceled batch keeps what it did, over HTTP: results, errors and cost of the records that
finished before the cancel."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from tests.batch.conftest import classify_template, provider_batches, records, write_jsonl
from tests.conftest import WorkerFactory
from tests.http.conftest import ApiProcess, bearer


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(speed=600.0, batch_seconds_per_request=0.1)


async def half_done(emulator: EmulatorServer, done: int) -> None:
    deadline = time.monotonic() + 60
    while not any(
        b.status == "in_progress" and b.request_counts and b.request_counts.completed == done
        for b in await asyncio.to_thread(provider_batches, emulator)
    ):
        assert time.monotonic() < deadline, "the batch never got half done"
        await asyncio.sleep(0.1)


async def test_a_canceled_batch_serves_its_partial_results_errors_and_cost(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    start_api: Callable[..., ApiProcess],
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    emulator.control.add_fault({"kind": "batch_expire", "fraction": 0.5})
    server = start_api()
    alice = bearer("tok-alice")
    path = write_jsonl(tmp_path / "tickets.jsonl", records(30))
    spec = {
        "job_type": "ticket_triage",
        "input_format": "records",
        "template": classify_template().model_dump(mode="json"),
    }
    async with (
        laneway_worker(dev_server_env),
        httpx.AsyncClient(base_url=server.url, timeout=30) as api,
    ):
        with path.open("rb") as upload:
            answer = await api.post(
                "/v1/jobs/batch",
                files={"file": ("tickets.jsonl", upload, "application/jsonl")},
                data={"spec": json.dumps(spec)},
                headers=alice,
            )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["job_id"]
        await half_done(emulator, 15)
        canceled = await api.post(
            f"/v1/jobs/{job_id}/cancel", json={"note": "wrong prompt"}, headers=alice
        )
        assert canceled.status_code == 200, canceled.text
        job = canceled.json()
        assert job["status"] == "canceled" and job["allowed_actions"] == ["archive"]
        assert job["report"]["records"] == {
            "total": 30,
            "succeeded": 15,
            "failed": 15,
            "retryable": 15,
            "pending": 0,
        }
        assert job["report"]["cost_batch_usd"] is not None

        results = await api.get(f"/v1/jobs/{job_id}/results", headers=alice)
        assert results.status_code == 200, results.text
        assert len(results.text.splitlines()) == 15
        errors = await api.get(f"/v1/jobs/{job_id}/errors", headers=alice)
        assert errors.status_code == 200, errors.text
        assert {json.loads(line)["code"] for line in errors.text.splitlines()} == {
            "batch_cancelled"
        }
        shown = await api.get(f"/v1/jobs/{job_id}", headers=alice)
        assert shown.json()["job"]["report"] == job["report"], "the closed job says the same"
