"""Run the emulator's uvicorn server in a background thread (tests, embedding)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from emulator.app import create_app
from emulator.config import EmulatorConfig
from emulator.control import EmulatorControl

START_TIMEOUT = 15.0


class EmulatorServer:
    def __init__(self, config: EmulatorConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._control: EmulatorControl | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not started")
        return self._port

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    @property
    def control(self) -> EmulatorControl:
        if self._control is None:
            self._control = EmulatorControl(self.root_url)
        return self._control

    def start(self) -> None:
        """Bind (port 0 picks a free one), serve in a thread, return once it accepts connections."""
        # proto=IPPROTO_TCP: asyncio only sets TCP_NODELAY on such sockets; without it every
        # answer waits ~40 ms for the peer's delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self._port = sock.getsockname()[1]
        uv_config = uvicorn.Config(
            create_app(self.config),
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(uv_config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="emulator", daemon=True
        )
        self._thread.start()
        self._wait_started()

    def _wait_started(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self._server is not None and self._thread is not None
            if self._server.started:
                return
            if not self._thread.is_alive():
                raise RuntimeError("the emulator's server thread exited during start-up")
            time.sleep(0.01)
        raise RuntimeError(f"the emulator did not start within {START_TIMEOUT} s")

    def stop(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
