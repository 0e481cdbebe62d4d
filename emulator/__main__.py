"""`python -m emulator --host 127.0.0.1 --port 8081 [--speed 60]`: serve in the foreground.

On SIGINT or SIGTERM uvicorn stops accepting, finishes in-flight requests and runs the app's
shutdown (ticker, webhook deliveries); the process then exits with status 0.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
from collections.abc import Iterator

import structlog
import uvicorn

from emulator.app import create_app
from emulator.config import EmulatorConfig
from emulator.logs import configure_logging


class _Server(uvicorn.Server):
    """uvicorn re-raises the stop signal after shutting down (exit status -15 for SIGTERM);
    a supervisor stopping the emulator on purpose should see a clean exit instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        stops = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in stops}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--speed", type=float, default=None, help="emulated s per real s")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--log-format", choices=("console", "json"), default="console")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="ignore Idempotency-Key, as a provider that promises nothing would",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_format, args.log_level)
    config = EmulatorConfig() if args.speed is None else EmulatorConfig(speed=args.speed)
    if args.strict:
        config = config.model_copy(update={"strict": True})
    structlog.get_logger().info(
        "emulator listening",
        base_url=f"http://{args.host}:{args.port}/v1",
        control=f"http://{args.host}:{args.port}/_emulator",
        speed=config.speed,
        strict=config.strict,
    )
    app = create_app(config)
    _Server(uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level)).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
