"""Records left after the round budget: the job waits for an operator's retry or archive."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from laneway.background import Actor, ControlRequest
from laneway.batch import BatchJobInput
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.ledger import Ledger
from tests.batch.conftest import (
    batch_fault,
    classify_template,
    make_batch_job,
    records,
    start_batch,
    wait_until,
    write_jsonl,
)
from tests.conftest import WorkerFactory, batch_outcome
from workflows.batch_job import BatchJobWorkflow

OPERATOR = Actor(id="otto", workspace="acme", roles=frozenset({"operator"}))


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(
        speed=600.0, batch_seconds_per_request=0.1, batch_completion_window_seconds=600
    )


def _job(settings: Settings, tmp_path: Path, emulator: EmulatorServer, kind: str) -> BatchJobInput:
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(200)),
        template=classify_template(),
        max_rounds=1,
    )
    emulator.control.add_fault(batch_fault(kind, job, fraction=0.5, times=1))
    return job


async def test_an_expired_batch_past_the_budget_expires_the_job_until_retried(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    job = _job(settings, tmp_path, emulator, "batch_expire")
    async with laneway_worker(time_skipping_env):
        handle = await start_batch(time_skipping_env, settings, job)
        held = await wait_until(handle, lambda v: v.status == ProductStatus.EXPIRED)
        assert held.records.succeeded == 100 and held.records.retryable == 100
        assert held.reason is not None and "100 records still failing after 1 rounds" in held.reason
        assert held.allowed_actions == ["retry", "archive"]
        retried = await handle.execute_update(
            BatchJobWorkflow.retry, ControlRequest(actor=OPERATOR, note="try again")
        )
        assert retried.status in (ProductStatus.QUEUED, ProductStatus.RUNNING)
        outcome = await batch_outcome(handle)
    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    assert outcome.report is not None and outcome.report.rounds == 2
    assert outcome.report.records.succeeded == 200
    retries = [
        e
        for e in Ledger.from_url(settings.ledger_url).list_events(job.job_id)
        if e.kind == "retried"
    ]
    assert [(e.actor, e.note) for e in retries] == [("otto", "try again")]


async def test_failures_past_the_budget_fail_the_job_until_archived(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    job = _job(settings, tmp_path, emulator, "batch_fail_fraction")
    async with laneway_worker(time_skipping_env):
        handle = await start_batch(time_skipping_env, settings, job)
        held = await wait_until(handle, lambda v: v.status == ProductStatus.FAILED)
        failing = held.records.retryable
        assert 50 < failing < 150
        await handle.execute_update(
            BatchJobWorkflow.archive, ControlRequest(actor=OPERATOR, note="not worth it")
        )
        outcome = await batch_outcome(handle)
    assert outcome.status == ProductStatus.FAILED
    assert outcome.reason is not None and f"{failing} records still failing" in outcome.reason
    assert outcome.report is not None, "partial results are kept"
    assert outcome.report.records.succeeded == 200 - failing
    kinds = [e.kind for e in Ledger.from_url(settings.ledger_url).list_events(job.job_id)]
    assert "archived" in kinds
