"""The Laneway worker process: runs every workflow and activity on the task queue."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import structlog
from sqlalchemy.exc import SQLAlchemyError
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
from workers.temporal_client import connect, data_converter
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


class WorkerCannotStart(Exception):
    """A dependency the worker needs is missing; the message names it and says what to do."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def check_data_dir(settings: Settings) -> None:
    """The data and artifact directories exist (created if need be) and take a file."""
    for name, path in (
        ("LANEWAY_DATA_DIR", settings.data_dir),
        ("LANEWAY_ARTIFACT_DIR", settings.artifacts_path),
    ):
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as error:
            raise WorkerCannotStart(
                f"its data directory {path} is not writable ({error.strerror or error}): "
                f"create it or make it writable, or set {name}"
            ) from None


def open_checked_ledger(settings: Settings) -> Ledger:
    """`open_ledger`, or WorkerCannotStart naming the ledger (never its password)."""
    try:
        return open_ledger(settings)
    except (SQLAlchemyError, OSError, ImportError, ValueError) as error:
        problem = str(error).splitlines()[0] if str(error) else error.__class__.__name__
        url = make_url_safe(settings.ledger_url)
        raise WorkerCannotStart(
            f"cannot open the ledger at {url}: {problem}; check LANEWAY_DATABASE_URL"
        ) from None


def make_url_safe(url: str) -> str:
    """The ledger URL with any password hidden."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: say so without repeating it
        return "LANEWAY_DATABASE_URL (not a database URL)"


def open_ledger(settings: Settings) -> Ledger:
    """The ledger, migrated to the newest schema (safe to run from several workers)."""
    upgrade_to_head(settings.ledger_url)
    return Ledger.from_url(settings.ledger_url)


def build_activities(settings: Settings, ledger: Ledger | None = None) -> list[Callable[..., Any]]:
    """Activity callables with their clients injected."""
    openai = build_openai_client(settings)
    ledger = open_ledger(settings) if ledger is None else ledger
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


def build_worker(
    client: Client, settings: Settings, activities: list[Callable[..., Any]] | None = None
) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=list(WORKFLOWS),
        activities=build_activities(settings) if activities is None else activities,
    )


def prepare_activities(settings: Settings) -> list[Callable[..., Any]]:
    """Check the local dependencies in order (data directory, ledger, provider
    configuration) and build the activities; WorkerCannotStart names the one that fails."""
    check_data_dir(settings)
    ledger = open_checked_ledger(settings)
    try:
        return build_activities(settings, ledger)
    except ProviderNotConfiguredError as error:
        raise WorkerCannotStart(f"the provider configuration: {error}", code=2) from None


async def connect_checked(settings: Settings) -> Client:
    try:
        return await connect(settings)
    except RuntimeError as error:  # the SDK's "Failed client connect: ..."
        raise WorkerCannotStart(
            f"cannot reach Temporal at {settings.temporal_address} (namespace "
            f"{settings.temporal_namespace}): {_first_line(error)}; start it (`laneway dev`) "
            "or set LANEWAY_TEMPORAL_ADDRESS"
        ) from None


def _first_line(error: BaseException) -> str:
    """The operating system's words inside the SDK's, e.g. "Connection refused"."""
    text = str(error).strip()
    said = re.search(r'message: "([^"]+)"', text)
    if said:
        return said.group(1)
    return text.splitlines()[0] if text else "no answer"


async def run_worker(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM, then finish in-flight tasks and stop."""
    activities = prepare_activities(settings)
    client = await connect_checked(settings)
    worker = build_worker(client, settings, activities)
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
        data_converter(settings)  # no payload key: refused before anything is touched
    except SettingsError as exc:
        print(f"laneway worker: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level)
    try:
        asyncio.run(run_worker(settings))
    except WorkerCannotStart as exc:
        print(f"laneway worker: {exc}", file=sys.stderr)
        return exc.code
    except SettingsError as exc:  # e.g. no payload key to encrypt with
        print(f"laneway worker: {exc}", file=sys.stderr)
        return 2
    return 0
