"""The HTTP API as production runs it: `laneway api` in a process of its own.

It serves the test's dev server and emulator, with four tokens: alice requests jobs and
reviews in the test's workspace (but never approves her own jobs), rita reviews there, olga
operates there, and gina reviews in another workspace. Each test has workspaces of its own.
The worker runs in the test's process (the `laneway_worker` fixture) on the same task queue,
ledger and artifact store, so whatever the API starts, the worker runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest


def tokens(workspace: str, other_workspace: str) -> dict[str, dict[str, Any]]:
    return {
        "tok-alice": {"actor": "alice", "workspace": workspace, "roles": ["reviewer"]},
        "tok-rita": {"actor": "rita", "workspace": workspace, "roles": ["reviewer"]},
        "tok-olga": {"actor": "olga", "workspace": workspace, "roles": ["operator"]},
        "tok-gina": {"actor": "gina", "workspace": other_workspace, "roles": ["reviewer"]},
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ApiProcess:
    """`python -m client.cli api` in its own process group, its output in a log file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "client.cli", "api"],
                env={**env, "LANEWAY_API_ADDRESS": f"127.0.0.1:{self.port}"},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_until_up(self, limit: float = 60) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"laneway api exited:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(f"laneway api never answered:\n{self.log()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def workspace() -> str:
    """A workspace of this test's own: the dev server (and its job lists) outlive one test."""
    return f"acme-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def other_workspace() -> str:
    return f"globex-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def api_env(worker_env: dict[str, str], workspace: str, other_workspace: str) -> dict[str, str]:
    """The worker's environment (same Temporal, queue, ledger, emulator) plus the tokens."""
    configured = json.dumps(tokens(workspace, other_workspace))
    return {**worker_env, "LANEWAY_API_TOKENS": configured}


@pytest.fixture
def start_api(api_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., ApiProcess]]:
    """Starts `laneway api` (extra environment as keywords); none outlives the test."""
    started: list[ApiProcess] = []

    def start(**extra_env: str) -> ApiProcess:
        api = ApiProcess({**api_env, **extra_env}, tmp_path / f"api-{len(started) + 1}.log")
        started.append(api)
        api.wait_until_up()
        return api

    yield start
    for api in started:
        api.stop()
        print(f"--- {api.log_path.name}\n{api.log()}")
