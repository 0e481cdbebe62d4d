"""A worker killed with SIGKILL mid-job: a new worker finishes the job, nothing happens twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.ledger import Ledger
from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from laneway.background import BackgroundJobInput
from laneway.jobs import DeliverToOutbox, ReviewPolicy
from laneway.settings import Settings
from laneway.status import ProductStatus
from tests.background.conftest import REVIEWER, control, start_job, wait_for_status
from tests.e2e.test_dev_stack import alive
from workflows.background_job import BackgroundJobWorkflow


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    # A response runs for a minute of real time, unless the test moves the clock.
    return EmulatorConfig(speed=600.0, response_in_progress_seconds=36_000)


class WorkerProcess:
    """`python -m workers` as it runs in production, configured by its environment only."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workers"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def worker_env(
    dev_server_env: WorkflowEnvironment, settings: Settings, emulator: EmulatorServer
) -> dict[str, str]:
    return {
        **os.environ,
        "LANEWAY_TEMPORAL_ADDRESS": dev_server_env.client.service_client.config.target_host,
        "LANEWAY_TASK_QUEUE": settings.task_queue,
        "LANEWAY_DATA_DIR": str(settings.data_dir),
        "LANEWAY_LOG_FORMAT": "json",
        "OPENAI_BASE_URL": emulator.base_url,
        "OPENAI_API_KEY": "crash-test",
    }


@pytest.fixture
def workers(worker_env: dict[str, str], tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()


async def polls_settled(emulator: EmulatorServer) -> int:
    """Wait until a poll has happened and none is in flight; return how many there were."""
    seen = -1
    for _ in range(200):
        polls = int(emulator.control.stats()["requests"].get("GET /v1/responses/{id}", 0))
        if polls and polls == seen:
            return polls
        seen = polls
        await asyncio.sleep(0.25)
    raise AssertionError("the job never polled the provider")


async def test_sigkill_while_polling_then_restart(
    dev_server_env: WorkflowEnvironment,
    settings: Settings,
    emulator: EmulatorServer,
    worker_env: dict[str, str],
    workers: list[WorkerProcess],
    make_job: Callable[..., BackgroundJobInput],
    tmp_path: Path,
) -> None:
    outbox = tmp_path / "outbox"
    job = make_job(
        "Crash test brief: the recovery was great.",
        review_policy=ReviewPolicy.REQUIRED,
        side_effect=DeliverToOutbox(directory=str(outbox)),
    )
    workers.append(WorkerProcess(worker_env, tmp_path / "worker-1.log"))
    handle = await start_job(dev_server_env, settings, job)
    await wait_for_status(handle, "running", limit=60)
    polls_before_kill = await polls_settled(emulator)

    killed = workers[0]
    killed.kill()
    assert not alive(killed.process.pid)
    emulator.control.advance_clock(40_000)  # the provider finishes while no worker runs
    await asyncio.sleep(1)
    assert emulator.control.stats()["requests"]["GET /v1/responses/{id}"] == polls_before_kill

    workers.append(WorkerProcess(worker_env, tmp_path / "worker-2.log"))
    await wait_for_status(handle, "needs_review", limit=90)
    await handle.execute_update(BackgroundJobWorkflow.approve, control(REVIEWER, "ok"))
    outcome = await handle.result()

    assert outcome.status == ProductStatus.COMPLETED
    assert emulator.control.stats()["counts"]["responses"] == 1
    assert [path.name for path in outbox.iterdir()] == [f"{job.job_id}.json"]
    ledger = Ledger.from_url(settings.ledger_url)
    kinds = [event.kind for event in ledger.list_events(job.job_id)]
    assert kinds.count("side_effect_ran") == 1
    assert kinds.count("created") == 1
    assert ledger.get_result(job.job_id) is not None
