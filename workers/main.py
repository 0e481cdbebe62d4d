"""The Laneway worker process: runs every workflow and activity on the task queue."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from activities.batch_jobs import BatchJobActivities
from activities.batches import BatchProviderActivities
from activities.job_closing import close_job_as_canceled
from activities.job_ledger import LedgerActivities
from activities.openai_client import ProviderNotConfiguredError, build_openai_client
from activities.responses import ResponseActivities
from activities.side_effects import DeliveryPolicy, SideEffectActivities
from activities.stack_check import StackCheckActivities
from laneway.logging_setup import configure_logging
from laneway.settings import Settings, SettingsError, load_settings
from store.artifacts import ArtifactStore
from store.ledger import Ledger, upgrade_to_head
from store.ledger.batch_records import BatchRecords
from workers.temporal_client import connect
from workflows.background_job import BackgroundJobWorkflow
from workflows.batch_job import BatchJobWorkflow
from workflows.batch_shard import BatchShardWorkflow
from workflows.stack_check import StackCheckWorkflow

log = structlog.get_logger(__name__)

WORKFLOWS: Sequence[type] = (
    StackCheckWorkflow,
    BackgroundJobWorkflow,
    BatchJobWorkflow,
    BatchShardWorkflow,
)


def open_ledger(settings: Settings) -> Ledger:
    """The ledger, migrated to the newest schema (safe to run from several workers)."""
    upgrade_to_head(settings.ledger_url)
    return Ledger.from_url(settings.ledger_url)


def build_activities(settings: Settings) -> list[Callable[..., Any]]:
    """Activity callables with their clients injected."""
    openai = build_openai_client(settings)
    ledger = open_ledger(settings)
    artifacts = ArtifactStore(settings.artifacts_path)
    responses = ResponseActivities(openai, ledger, artifacts)
    http = httpx.AsyncClient(timeout=30.0)
    policy = DeliveryPolicy.from_settings(settings)
    side_effects = SideEffectActivities(ledger, artifacts, http, policy)
    ledger_writes = LedgerActivities(ledger)
    records = BatchRecords(ledger.engine)
    batch_jobs = BatchJobActivities(ledger, records, artifacts, http, policy)
    batches = BatchProviderActivities(openai, ledger, records, artifacts)
    return [
        StackCheckActivities(openai).check_provider,
        close_job_as_canceled,
        ledger_writes.record_background_job,
        ledger_writes.record_job_status,
        responses.start_background_response,
        responses.wait_for_response_change,
        responses.get_response,
        responses.cancel_response,
        responses.store_response_result,
        side_effects.run_side_effect,
        batch_jobs.record_batch_job,
        batch_jobs.validate_batch_input,
        batch_jobs.plan_batch,
        batch_jobs.plan_retry_round,
        batch_jobs.count_batch_records,
        batch_jobs.build_batch_results,
        batch_jobs.run_batch_side_effect,
        batches.submit_batch_shard,
        batches.wait_for_batch_change,
        batches.get_batch,
        batches.cancel_batch,
        batches.ingest_batch_shard,
    ]


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
