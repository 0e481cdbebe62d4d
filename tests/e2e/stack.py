"""`laneway dev` as a user runs it, for end-to-end tests."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

UP_LINE = "Laneway dev stack is up"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DevStackProcess:
    """A `laneway dev` running as a user would run it, in its own process group."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "client.cli", "dev"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def wait_until_up(self, timeout: float = 150) -> None:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                break
            self.output.append(line)
            if UP_LINE in line:
                return
        raise AssertionError("laneway dev did not come up:\n" + "".join(self.output))

    def stop(self, sig: signal.Signals) -> int:
        self.process.send_signal(sig)
        out, _ = self.process.communicate(timeout=90)
        self.output.append(out)
        return self.process.returncode
