"""`laneway dev`: the embedded local stack in one command.

Starts, in order, the Temporal dev server (SQLite under the data directory, Web UI, Laneway's
search attributes), the OpenAI-compatible emulator, a worker and the HTTP API (which takes the
emulator's signed webhooks); waits until each one answers; says where each listens; and on
Ctrl-C or SIGTERM stops them in reverse order.

Children run in their own session so that Ctrl-C reaches only this supervisor, which then stops
them in order; each child also gets SIGTERM from the kernel if the supervisor itself dies, so
no process outlives it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import fcntl
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO

import httpx

from dev.binaries import temporal_cli
from emulator.control import EmulatorControl
from laneway.settings import Settings, SettingsError, read_tokens_file
from laneway.visibility import search_attribute_flags
from workers.codec import write_dev_keys
from workers.temporal_client import (
    connect,
    dev_keys_path,
    payload_keyring,
    register_search_attributes,
)
from workflows.stack_check import StackCheckWorkflow

DEV_API_KEY = "laneway-dev"
DEV_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"laneway-dev-webhook-secret-32byte").decode()
DEV_WORKSPACE = "dev"
# Tokens for trying the HTTP API and CLI locally when none are configured (never deployed).
DEV_TOKENS = {
    "dev-alice": {"actor": "alice", "workspace": DEV_WORKSPACE, "roles": ["reviewer"]},
    "dev-rita": {"actor": "rita", "workspace": DEV_WORKSPACE, "roles": ["reviewer"]},
    "dev-olga": {"actor": "olga", "workspace": DEV_WORKSPACE, "roles": ["operator"]},
}
_PR_SET_PDEATHSIG = 1


class DevStackError(RuntimeError):
    """The stack could not start; the message says what to do."""


class AlreadyRunningError(DevStackError):
    pass


@functools.cache
def _linux_libc() -> ctypes.CDLL | None:
    """Linux's libc for prctl; elsewhere (macOS) children are stopped by `stop` alone.

    Loaded in the parent before a fork, never between fork and exec (that could deadlock on
    a lock another thread held at the fork), and not at import, so this module imports on
    any POSIX system."""
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL("libc.so.6", use_errno=True)


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if the supervisor is killed, so is the child.
    libc = _linux_libc()
    if libc is not None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class ChildProcess:
    """One process of the stack, its output going to a log file."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            start_new_session=True,
            preexec_fn=_die_with_parent if _linux_libc() is not None else None,
        )

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, grace_seconds: float) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace_seconds)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()


@contextlib.contextmanager
def single_instance(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock for the life of the stack; a second `laneway dev` is refused."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            holder = lock_file.read().strip() or "unknown"
            raise AlreadyRunningError(
                f"laneway dev is already running (pid {holder}, data directory "
                f"{lock_path.parent}); use that stack, or stop it with Ctrl-C in its "
                f"terminal or `kill {holder}`"
            ) from None
        lock_file.truncate(0)
        lock_file.write(str(os.getpid()))
        lock_file.flush()
        try:
            yield
        finally:
            lock_file.truncate(0)


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def ensure_port_free(name: str, address: str) -> None:
    host, port = _split_address(address)
    with socket.socket() as probe:
        if probe.connect_ex((host, port)) == 0:
            raise DevStackError(
                f"{name} cannot listen on {address}: something else is already listening there; "
                f"stop it or choose another address in the settings"
            )


def wait_until(what: str, check: Callable[[], bool], timeout: float, child: ChildProcess) -> None:
    """Poll `check` until it passes; fail early if the child process has died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = child.exited()
        if code is not None:
            raise DevStackError(f"{what} exited with code {code}; see {child.log_path}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    raise DevStackError(
        f"{what} did not become healthy within {timeout:.0f}s; see {child.log_path}"
    )


def http_ok(url: str) -> bool:
    return httpx.get(url, timeout=2.0).status_code == 200


async def _temporal_answers(settings: Settings) -> bool:
    client = await connect(settings)
    return await client.service_client.check_health()


async def _register_search_attributes(settings: Settings) -> None:
    # The flags register attributes only when the database is new; a var/temporal.db made
    # by an older Laneway learns the attributes added since here.
    await register_search_attributes(await connect(settings))


async def _run_stack_check(settings: Settings) -> str:
    client = await connect(settings)
    result = await client.execute_workflow(
        StackCheckWorkflow.run,
        id=f"stack-check-{uuid.uuid4()}",
        task_queue=settings.task_queue,
        static_summary="stack check: a worker picks up a task and reaches the provider",
        execution_timeout=timedelta(seconds=60),
    )
    return f"{len(result.models)} models at {result.base_url}"


@dataclass
class DevStack:
    settings: Settings
    use_emulator: bool = True
    children: list[ChildProcess] = field(default_factory=list)

    @property
    def log_dir(self) -> Path:
        return self.settings.data_dir / "logs"

    def temporal_process(self) -> ChildProcess:
        host, port = _split_address(self.settings.temporal_address)
        argv = [
            str(temporal_cli()),
            "server",
            "start-dev",
            "--db-filename",
            str(self.settings.data_dir / "temporal.db"),
            "--ip",
            host,
            "--port",
            str(port),
            "--ui-port",
            str(self.settings.temporal_ui_port),
            "--ui-disable-news-fetch",
            "--ui-codec-endpoint",
            f"http://{self.settings.api_address}/codec",
            "--namespace",
            self.settings.temporal_namespace,
            *search_attribute_flags(),
            "--log-level",
            "warn",
        ]
        return ChildProcess("temporal", argv, self.log_dir / "temporal.log")

    def emulator_process(self) -> ChildProcess:
        host, port = _split_address(self.settings.emulator_address)
        argv = [sys.executable, "-m", "emulator", "--host", host, "--port", str(port)]
        argv += ["--log-format", self.settings.log_format]
        return ChildProcess("emulator", argv, self.log_dir / "emulator.log")

    def worker_env(self) -> dict[str, str]:
        """The stack's settings, passed on whole: the worker may not share our environment."""
        settings = self.settings
        env = {
            "LANEWAY_TEMPORAL_ADDRESS": settings.temporal_address,
            "LANEWAY_TEMPORAL_NAMESPACE": settings.temporal_namespace,
            "LANEWAY_TASK_QUEUE": settings.task_queue,
            "LANEWAY_DATA_DIR": str(settings.data_dir),
            "LANEWAY_DATABASE_URL": settings.ledger_url,
            "LANEWAY_ARTIFACT_DIR": str(settings.artifacts_path),
            "LANEWAY_LOG_FORMAT": settings.log_format,
            "LANEWAY_LOG_LEVEL": settings.log_level,
            "LANEWAY_OUTBOX_DIR": str(settings.outbox_path),
            "LANEWAY_WEBHOOK_ALLOW_HOSTS": json.dumps(self.webhook_allow_hosts()),
            "LANEWAY_WEBHOOK_SECRETS": json.dumps(
                {
                    name: secret.get_secret_value()
                    for name, secret in settings.webhook_secrets.items()
                }
            ),
        }
        if settings.payload_keys:
            keys = {k: v.get_secret_value() for k, v in settings.payload_keys.items()}
            env["LANEWAY_PAYLOAD_KEYS"] = json.dumps(keys)
        if settings.payload_key_id is not None:
            env["LANEWAY_PAYLOAD_KEY_ID"] = settings.payload_key_id
        if settings.payload_keys_file is not None:
            env["LANEWAY_PAYLOAD_KEYS_FILE"] = str(settings.payload_keys_file)
        if self.use_emulator:
            env |= {"OPENAI_BASE_URL": settings.emulator_base_url, "OPENAI_API_KEY": DEV_API_KEY}
        return env

    def webhook_allow_hosts(self) -> list[str]:
        """A local stack's webhook receivers run on this machine: with the emulator, and no
        allow-list configured, loopback is allowed (plain http too); nowhere else is."""
        configured = list(self.settings.webhook_allow_hosts)
        if configured or not self.use_emulator:
            return configured
        return [_split_address(self.settings.emulator_address)[0], "localhost"]

    def worker_process(self) -> ChildProcess:
        argv = [sys.executable, "-m", "workers"]
        return ChildProcess("worker", argv, self.log_dir / "worker.log", env=self.worker_env())

    @property
    def tokens_file(self) -> Path:
        """The API's tokens: the configured file, else dev tokens written beside the data."""
        if self.settings.api_tokens_file is not None:
            return self.settings.api_tokens_file
        return self.settings.data_dir / "dev-api-tokens.json"

    @property
    def webhook_secret(self) -> str | None:
        if self.settings.openai_webhook_secret is not None:
            return self.settings.openai_webhook_secret
        return DEV_WEBHOOK_SECRET if self.use_emulator else None

    def api_env(self) -> dict[str, str]:
        env = self.worker_env() | {
            "LANEWAY_API_ADDRESS": self.settings.api_address,
            "LANEWAY_WEBHOOK_POLL_INTERVAL": str(self.settings.webhook_poll_interval),
        }
        if self.tokens_file.exists():
            env["LANEWAY_API_TOKENS_FILE"] = str(self.tokens_file)
        if self.settings.api_tokens:
            env["LANEWAY_API_TOKENS"] = json.dumps(
                {t: who.model_dump(mode="json") for t, who in self.settings.api_tokens.items()}
            )
        if self.webhook_secret is not None:
            env["OPENAI_WEBHOOK_SECRET"] = self.webhook_secret
        return env

    def api_process(self) -> ChildProcess:
        argv = [sys.executable, "-m", "client.http_api"]
        return ChildProcess("api", argv, self.log_dir / "api.log", env=self.api_env())

    def start(self, say: Callable[[str], None]) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self._ensure_payload_key(say)
        ensure_port_free("Temporal", self.settings.temporal_address)
        if self.use_emulator:
            ensure_port_free("the emulator", self.settings.emulator_address)
        ensure_port_free("the HTTP API", self.settings.api_address)
        self._start_temporal(say)
        if self.use_emulator:
            self._start_emulator(say)
        self._start_worker(say)
        self._start_api(say)

    def _ensure_payload_key(self, say: Callable[[str], None]) -> None:
        """Payloads are always encrypted: without configured keys, a development key is
        written beside the data (once), and every process of the stack finds it there."""
        configured = self.settings.payload_keys or self.settings.payload_keys_file
        if not configured:
            write_dev_keys(dev_keys_path(self.settings))
        try:
            key_id = payload_keyring(self.settings).current
        except SettingsError as error:
            raise DevStackError(str(error)) from None
        where = "configured" if configured else str(dev_keys_path(self.settings))
        say(f"  Payload key       {key_id!r} ({where}); payloads in Temporal are encrypted")

    def _launch(self, child: ChildProcess) -> ChildProcess:
        child.start()
        self.children.append(child)
        return child

    def _start_temporal(self, say: Callable[[str], None]) -> None:
        temporal = self._launch(self.temporal_process())
        wait_until(
            "the Temporal server",
            lambda: asyncio.run(_temporal_answers(self.settings)),
            timeout=60,
            child=temporal,
        )
        asyncio.run(_register_search_attributes(self.settings))
        wait_until(
            "the Temporal Web UI", lambda: http_ok(self.settings.temporal_ui_url), 30, temporal
        )
        say(
            f"  Temporal server   {self.settings.temporal_address}  namespace "
            f"{self.settings.temporal_namespace}, state in {self.settings.data_dir / 'temporal.db'}"
        )
        say(f"  Temporal Web UI   {self.settings.temporal_ui_url}")

    def _start_emulator(self, say: Callable[[str], None]) -> None:
        emulator = self._launch(self.emulator_process())
        health = f"http://{self.settings.emulator_address}/_emulator/health"
        wait_until("the emulator", lambda: http_ok(health), timeout=30, child=emulator)
        base_url = self.settings.emulator_base_url
        say(f"  OpenAI emulator   {base_url}  (API key: any, e.g. {DEV_API_KEY})")

    def _start_worker(self, say: Callable[[str], None]) -> None:
        worker = self._launch(self.worker_process())
        seen: list[str] = []

        def stack_check_passes() -> bool:
            seen.append(asyncio.run(_run_stack_check(self.settings)))
            return True

        wait_until("the worker", stack_check_passes, timeout=90, child=worker)
        say(f"  Worker            task queue {self.settings.task_queue}, provider: {seen[-1]}")

    def _start_api(self, say: Callable[[str], None]) -> None:
        if not self.settings.api_tokens and not self.tokens_file.exists():
            self.tokens_file.write_text(json.dumps(DEV_TOKENS, indent=2) + "\n")
        api = self._launch(self.api_process())
        url = f"http://{self.settings.api_address}"
        wait_until("the HTTP API", lambda: http_ok(f"{url}/healthz"), timeout=60, child=api)
        if self.use_emulator:
            control = EmulatorControl(f"http://{self.settings.emulator_address}")
            control.set_webhooks(f"{url}/webhooks/openai", self.webhook_secret)
            control.close()
        say(f"  HTTP API          {url}  (OpenAPI at {url}/docs), webhooks at /webhooks/openai")
        from_file = read_tokens_file(self.tokens_file) if self.tokens_file.exists() else {}
        names = ", ".join(sorted({**from_file, **self.settings.api_tokens}))
        say(f"  API tokens        {names or 'none: set LANEWAY_API_TOKENS'}")

    def first_exited(self) -> ChildProcess | None:
        return next((child for child in self.children if child.exited() is not None), None)

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop(grace_seconds=20 if child.name == "temporal" else 10)
        self.children.clear()


class StartupInterrupted(DevStackError):
    pass


class _StopRequested:
    """Signal handler: interrupts a start in progress, or asks a running stack to stop."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.stack_is_up = False

    def __call__(self, signum: int, _frame: object) -> None:
        self.signal_name = signal.Signals(signum).name
        if not self.stack_is_up:
            raise StartupInterrupted(f"{self.signal_name} received while starting; stopped")


def run_dev_stack(settings: Settings, use_emulator: bool = True) -> int:
    """Run the stack in the foreground until Ctrl-C / SIGTERM; returns the exit status."""
    stop_requested = _StopRequested()
    signal.signal(signal.SIGINT, stop_requested)
    signal.signal(signal.SIGTERM, stop_requested)
    stack = DevStack(settings, use_emulator=use_emulator)
    try:
        with single_instance(settings.data_dir / "dev.lock"):
            print(f"Starting the Laneway dev stack (data in {settings.data_dir}) ...", flush=True)
            stack.start(lambda line: print(line, flush=True))
            print(f"  Logs              {stack.log_dir}", flush=True)
            print("Laneway dev stack is up. Press Ctrl-C to stop.", flush=True)
            stop_requested.stack_is_up = True
            return _supervise(stack, stop_requested)
    except DevStackError as exc:
        print(f"laneway dev: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        stack.stop()


def _supervise(stack: DevStack, stop_requested: _StopRequested) -> int:
    while stop_requested.signal_name is None:
        crashed = stack.first_exited()
        if crashed is not None:
            print(
                f"laneway dev: {crashed.name} exited unexpectedly (code {crashed.exited()}); "
                f"stopping the stack; see {crashed.log_path}",
                file=sys.stderr,
                flush=True,
            )
            return 1
        time.sleep(0.3)
    print(f"Received {stop_requested.signal_name}; stopping the stack ...", flush=True)
    stack.stop()
    print("Stopped.", flush=True)
    return 0
