"""`laneway dev` end to end: healthy, single instance, clean stop, state kept on restart."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dev.binaries import temporal_cli
from laneway.visibility import SEARCH_ATTRIBUTES
from tests.e2e.stack import DevStackProcess, free_port


def descendants(pid: int) -> set[int]:
    """Every live process whose parent chain leads to `pid`."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "LANEWAY_DATA_DIR": str(tmp_path / "var"),
        "LANEWAY_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "LANEWAY_TEMPORAL_UI_PORT": str(free_port()),
        "LANEWAY_EMULATOR_ADDRESS": f"127.0.0.1:{free_port()}",
        "LANEWAY_API_ADDRESS": f"127.0.0.1:{free_port()}",
        "LANEWAY_TASK_QUEUE": "laneway-dev-test",
    }
    yield env


def search_attributes(env: dict[str, str]) -> dict[str, str]:
    listing = subprocess.run(
        [
            str(temporal_cli()),
            "operator",
            "search-attribute",
            "list",
            "--address",
            env["LANEWAY_TEMPORAL_ADDRESS"],
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    rows = json.loads(listing.stdout)
    custom = rows["customAttributes"] if isinstance(rows, dict) else rows
    return {str(k): str(v) for k, v in custom.items()}


def stack_check_runs(env: dict[str, str]) -> int:
    count = subprocess.run(
        [
            str(temporal_cli()),
            "workflow",
            "count",
            "--address",
            env["LANEWAY_TEMPORAL_ADDRESS"],
            "--query",
            "WorkflowType = 'StackCheckWorkflow'",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return int(count.stdout.split(":")[-1].strip())


def older_temporal_database(env: dict[str, str]) -> None:
    """A var/temporal.db as an older Laneway left it: one search attribute registered."""
    database = Path(env["LANEWAY_DATA_DIR"]) / "temporal.db"
    database.parent.mkdir(parents=True)
    address = env["LANEWAY_TEMPORAL_ADDRESS"]
    server = subprocess.Popen(
        [
            str(temporal_cli()),
            *("server", "start-dev", "--headless", "--db-filename", str(database)),
            *("--port", address.rpartition(":")[2], "--log-level", "error"),
            *("--search-attribute", "LanewayStatus=Keyword"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                assert set(search_attributes(env)) >= {"LanewayStatus"}
                break
            except (subprocess.CalledProcessError, AssertionError, json.JSONDecodeError):
                time.sleep(0.5)
        assert set(search_attributes(env)) & set(SEARCH_ATTRIBUTES) == {"LanewayStatus"}
    finally:
        server.terminate()
        server.wait(30)


def test_dev_stack_lifecycle(stack_env: dict[str, str]) -> None:
    older_temporal_database(stack_env)  # the stack registers what the old one lacks
    first = DevStackProcess(stack_env)
    first.wait_until_up()
    children = descendants(first.process.pid)
    try:
        ui = httpx.get(f"http://127.0.0.1:{stack_env['LANEWAY_TEMPORAL_UI_PORT']}", timeout=10)
        assert ui.status_code == 200
        registered = search_attributes(stack_env)
        for name, kind in SEARCH_ATTRIBUTES.items():
            indexed_type = "INDEXED_VALUE_TYPE_" + re.sub(r"(?<!^)([A-Z])", r"_\1", kind).upper()
            assert registered.get(name) == indexed_type, f"{name} not registered: {registered}"
        emulator = httpx.get(
            f"http://{stack_env['LANEWAY_EMULATOR_ADDRESS']}/_emulator/health", timeout=10
        )
        assert emulator.status_code == 200
        api = httpx.get(f"http://{stack_env['LANEWAY_API_ADDRESS']}/openapi.json", timeout=10)
        assert api.status_code == 200 and "/v1/jobs" in api.json()["paths"]
        payloads_encrypted_with_a_dev_key(stack_env, children)

        second = subprocess.run(
            [sys.executable, "-m", "client.cli", "dev"],
            env=stack_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert f"already running (pid {first.process.pid}" in second.stderr
    finally:
        assert first.stop(signal.SIGINT) == 0, "".join(first.output)
    assert len(children) >= 4, f"expected temporal, emulator, worker and API, got {children}"
    assert not [pid for pid in children if alive(pid)], "processes outlived laneway dev"
    assert stack_check_runs_after_restart(stack_env) >= 2


def payloads_encrypted_with_a_dev_key(env: dict[str, str], children: set[int]) -> None:
    """No key configured: `laneway dev` made one (owner-only) and the Web UI decodes through
    the API's codec endpoint, which answers the UI's origin."""
    keys = Path(env["LANEWAY_DATA_DIR"]) / "dev-payload-keys.json"
    assert keys.stat().st_mode & 0o777 == 0o600
    assert list(json.loads(keys.read_text())["keys"]) == ["dev-1"]
    codec = f"http://{env['LANEWAY_API_ADDRESS']}/codec"
    command_lines = [Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") for pid in children]
    assert [line for line in command_lines if codec.encode() in line], command_lines
    ui_origin = f"http://127.0.0.1:{env['LANEWAY_TEMPORAL_UI_PORT']}"
    preflight = httpx.options(
        f"{codec}/decode",
        headers={"Origin": ui_origin, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.headers.get("access-control-allow-origin") == ui_origin
    assert httpx.post(f"{codec}/decode", json={"payloads": []}, timeout=10).status_code == 401


def stack_check_runs_after_restart(env: dict[str, str]) -> int:
    """Start again on the same data directory: the first run's workflow is still there."""
    again = DevStackProcess(env)
    again.wait_until_up()
    children = descendants(again.process.pid)
    try:
        return stack_check_runs(env)
    finally:
        assert again.stop(signal.SIGTERM) == 0, "".join(again.output)
        assert not [pid for pid in children if alive(pid)]
