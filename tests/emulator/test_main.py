"""`python -m emulator` serves in the foreground and exits cleanly on SIGINT and SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import httpx
import pytest

from tests.emulator.helpers import wait_until


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _healthy(url: str) -> bool:
    try:
        return bool(httpx.get(url, timeout=1).json() == {"status": "ok"})
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_foreground_server_stops_on_signal(stop_signal: signal.Signals) -> None:
    port = _free_port()
    argv = [sys.executable, "-m", "emulator", "--port", str(port), "--speed", "120"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: _healthy(f"http://127.0.0.1:{port}/_emulator/health"), timeout=20)
        answer = httpx.get(
            f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": "Bearer k"}
        )
        assert answer.status_code == 200
        process.send_signal(stop_signal)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert f"http://127.0.0.1:{port}/v1" in output
