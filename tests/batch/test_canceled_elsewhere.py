"""A provider batch cancelled by someone other than Laneway (an operator in the provider's
console, another tool) ends the job canceled and says so; nothing is resubmitted behind the
back of whoever cancelled it, and the records that finished are kept."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from openai import OpenAI
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from laneway.background import PollingPolicy
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.artifacts import ArtifactStore
from tests.batch.conftest import (
    batch_fault,
    classify_template,
    make_batch_job,
    provider_batches,
    read_jsonl,
    records,
    start_batch,
    write_jsonl,
)
from tests.conftest import WorkerFactory, batch_outcome

FAST = timedelta(milliseconds=200)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(speed=600.0, batch_seconds_per_request=0.1)


async def test_a_batch_cancelled_at_the_provider_ends_the_job_canceled(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(40)),
        template=classify_template(),
        job_input={"polling": PollingPolicy(first_interval=FAST, backoff=1.0, max_interval=FAST)},
    )
    emulator.control.add_fault(batch_fault("batch_expire", job, fraction=0.5))
    async with laneway_worker(time_skipping_env):
        handle = await start_batch(time_skipping_env, settings, job)
        for _ in range(600):
            half = [
                b
                for b in await asyncio.to_thread(provider_batches, emulator)
                if b.request_counts and b.request_counts.completed == 20
            ]
            if half:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the batch never got half done")
        provider = OpenAI(base_url=emulator.base_url, api_key="test-key", max_retries=0)
        await asyncio.to_thread(provider.batches.cancel, half[0].id)
        outcome = await batch_outcome(handle)
        closed = await handle.describe()

    assert outcome.status == ProductStatus.CANCELED
    assert outcome.reason == (
        f"batch {half[0].id} was cancelled at the provider, not by Laneway "
        "(20 of 40 succeeded, 20 failed, 0 never sent)"
    )
    assert closed.status == WorkflowExecutionStatus.CANCELED
    assert len(provider_batches(emulator)) == 1, "nothing was resubmitted"
    assert outcome.report is not None and outcome.report.records.succeeded == 20
    errors = read_jsonl(ArtifactStore(settings.artifacts_path), outcome.report.errors)
    assert {e["code"] for e in errors} == {"batch_cancelled"}
    assert all("not by Laneway" in e["message"] for e in errors)
