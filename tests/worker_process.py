"""Laneway's worker as production runs it, in a process of its own, for crash tests.

`python -m workers` in its own process group, configured by its environment only, against the
test's Temporal dev server and emulator; its ledger and artifacts are the test's data
directory, so assertions read what the worker processes wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from emulator.server import EmulatorServer
from laneway.settings import Settings
from tests.payload_keys import TEST_PAYLOAD_ENV


class WorkerProcess:
    """`python -m workers` in its own process group, its output in a log file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log_path = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "workers"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pgid = self.process.pid  # start_new_session: the worker leads its own group

    @property
    def identity_prefix(self) -> str:
        """Temporal's default worker identity is `<pid>@<host>`."""
        return f"{self.process.pid}@"

    def group_alive(self) -> bool:
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL the whole group: no shutdown, no activity completion, no goodbye to Temporal."""
        if self.group_alive():
            os.killpg(self.pgid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int | None:
        """SIGTERM, as an operator stops a worker; SIGKILL if it does not stop in time."""
        if self.process.poll() is None:
            os.killpg(self.pgid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(20)
        if self.group_alive():
            self.kill()
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def worker_env(
    dev_server_env: WorkflowEnvironment, settings: Settings, emulator: EmulatorServer
) -> dict[str, str]:
    # Nothing Laneway- or OpenAI-specific leaks in from the developer's environment.
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LANEWAY_", "OPENAI_"))
    }
    return {
        **inherited,
        "LANEWAY_TEMPORAL_ADDRESS": dev_server_env.client.service_client.config.target_host,
        "LANEWAY_TEMPORAL_NAMESPACE": dev_server_env.client.namespace,
        "LANEWAY_TASK_QUEUE": settings.task_queue,
        "LANEWAY_DATA_DIR": str(settings.data_dir),
        "LANEWAY_LOG_FORMAT": "json",
        "LANEWAY_WEBHOOK_ALLOW_HOSTS": json.dumps(settings.webhook_allow_hosts),
        "LANEWAY_WEBHOOK_SECRETS": json.dumps(
            {name: value.get_secret_value() for name, value in settings.webhook_secrets.items()}
        ),
        "OPENAI_BASE_URL": emulator.base_url,
        "OPENAI_API_KEY": "crash-test",
        **TEST_PAYLOAD_ENV,
    }


@pytest.fixture
def start_worker(
    worker_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[[], WorkerProcess]]:
    """Starts worker processes; whatever happens in the test, none outlives it."""
    started: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        worker = WorkerProcess(worker_env, tmp_path / f"worker-{len(started) + 1}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
    for worker in started:
        print(f"--- {worker.log_path.name} (exit {worker.process.returncode})\n{worker.log()}")
    assert not [w.process.pid for w in started if w.group_alive()], "a worker outlived the test"


async def wait_until_polling(
    client: Client, task_queue: str, worker: WorkerProcess, limit: float = 30
) -> None:
    """Until Temporal lists this very process among the task queue's workflow pollers."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            raise AssertionError(f"the worker exited {worker.process.returncode}:\n{worker.log()}")
        described = await client.workflow_service.describe_task_queue(request)
        if any(p.identity.startswith(worker.identity_prefix) for p in described.pollers):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the worker never polled {task_queue}:\n{worker.log()}")


async def wait_for(
    probe: Callable[[], Any], what: str, limit: float = 30, every: float = 0.05
) -> Any:
    """Until `probe()` returns something truthy; returns it."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        await asyncio.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")
