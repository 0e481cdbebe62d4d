"""The Laneway worker process: runs every workflow and activity on the task queue."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from activities.openai_client import ProviderNotConfiguredError, build_openai_client
from activities.stack_check import StackCheckActivities
from laneway.logging_setup import configure_logging
from laneway.settings import Settings, SettingsError, load_settings
from workers.temporal_client import connect
from workflows.stack_check import StackCheckWorkflow

log = structlog.get_logger(__name__)

WORKFLOWS: Sequence[type] = (StackCheckWorkflow,)


def build_activities(settings: Settings) -> list[Callable[..., Any]]:
    """Activity callables with their clients injected."""
    openai = build_openai_client(settings)
    return [StackCheckActivities(openai).check_provider]


def build_worker(client: Client, settings: Settings) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=list(WORKFLOWS),
        activities=build_activities(settings),
    )


async def run_worker(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM, then finish in-flight tasks and stop."""
    client = await connect(settings)
    worker = build_worker(client, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker started",
        temporal=settings.temporal_address,
        namespace=settings.temporal_namespace,
        task_queue=settings.task_queue,
        provider=settings.openai_base_url or "OpenAI",
    )
    async with worker:
        await stop.wait()
    log.info("worker stopped")


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"laneway worker: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level)
    try:
        asyncio.run(run_worker(settings))
    except ProviderNotConfiguredError as exc:
        print(f"laneway worker: {exc}", file=sys.stderr)
        return 2
    return 0
