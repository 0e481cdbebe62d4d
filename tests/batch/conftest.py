"""Fixtures for the batch lane: input files, job specs, and a client-side job runner."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

from openai import OpenAI
from openai.types import Batch
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from emulator.server import EmulatorServer
from laneway.batch import BatchJobInput, BatchJobSpec, BatchOutcome, BatchProgress, RequestTemplate
from laneway.jobs import ArtifactRef
from laneway.settings import Settings
from store.artifacts import ArtifactStore
from tests.conftest import batch_view, remember
from workflows.batch_job import BatchJobWorkflow

WORKSPACE = "acme"
REQUESTER = "alice"
MODEL = "gpt-4o-mini"

BatchHandle = WorkflowHandle[BatchJobWorkflow, BatchOutcome]


def write_jsonl(path: Path, items: Iterable[Any]) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for item in items:
            out.write((item if isinstance(item, str) else json.dumps(item)) + "\n")
    return path


def records(count: int, start: int = 0) -> Iterable[dict[str, Any]]:
    for n in range(start, start + count):
        yield {"id": f"rec-{n}", "title": f"Ticket {n}: the export is slow"}


def request_lines(count: int, *, url: str = "/v1/responses") -> Iterable[dict[str, Any]]:
    for n in range(count):
        yield {
            "custom_id": f"req-{n}",
            "method": "POST",
            "url": url,
            "body": {"model": MODEL, "input": f"Classify ticket {n}"},
        }


def store_input(settings: Settings, path: Path) -> ArtifactRef:
    return ArtifactStore(settings.artifacts_path).put_file(path, "application/jsonl")


def classify_template(**fields: Any) -> RequestTemplate:
    return RequestTemplate(
        endpoint="/v1/responses",
        model=MODEL,
        prompt_template="Classify this ticket: {title}",
        id_field="id",
        **fields,
    )


def make_batch_job(
    settings: Settings,
    path: Path,
    *,
    job_input: dict[str, Any] | None = None,
    job_id: str | None = None,
    **spec: Any,
) -> BatchJobInput:
    if "template" in spec:
        spec.setdefault("input_format", "records")
    return BatchJobInput(
        job_id=job_id or f"batch-{uuid.uuid4().hex[:12]}",
        spec=BatchJobSpec(
            job_type="ticket_triage",
            workspace=WORKSPACE,
            requested_by=REQUESTER,
            input=store_input(settings, path),
            **spec,
        ),
        **(job_input or {}),
    )


async def start_batch(
    env: WorkflowEnvironment, settings: Settings, job: BatchJobInput
) -> BatchHandle:
    return remember(
        await env.client.start_workflow(
            BatchJobWorkflow.run, job, id=job.job_id, task_queue=settings.task_queue
        )
    )


async def wait_until(
    handle: BatchHandle, check: Callable[[BatchProgress], bool], limit: float = 60
) -> BatchProgress:
    deadline = time.monotonic() + limit
    view: BatchProgress | None = None
    while time.monotonic() < deadline:
        view = await batch_view(handle)
        if check(view):
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"the batch job never got there; last seen {view}")


def batch_fault(kind: str, job: BatchJobInput, **fields: Any) -> dict[str, Any]:
    """An emulator fault rule aimed at this job's batches only."""
    match = {"metadata_key": "laneway_job_id", "metadata_value": job.job_id}
    match.update(fields.pop("match", {}))
    return {"kind": kind, "match": match, **fields}


def read_jsonl(store: ArtifactStore, ref: ArtifactRef) -> list[dict[str, Any]]:
    return [json.loads(line) for line in store.read_bytes(ref).splitlines() if line.strip()]


def provider_batches(emulator: EmulatorServer) -> list[Batch]:
    """Every batch the emulator holds (the first 100, newest first), as the SDK reads them."""
    client = OpenAI(base_url=emulator.base_url, api_key="test-key", max_retries=0)
    return list(client.batches.list(limit=100))


def provider_batch_dicts(emulator: EmulatorServer) -> list[dict[str, Any]]:
    return [batch.model_dump() for batch in provider_batches(emulator)]


@contextlib.asynccontextmanager
async def provider_clock_follows_temporal(
    env: WorkflowEnvironment, emulator: EmulatorServer
) -> AsyncIterator[None]:
    """Advance the emulated provider clock as far as the time-skipping server moves."""

    async def follow() -> None:
        last = await env.get_current_time()
        while True:
            now = await env.get_current_time()
            if now > last:
                await asyncio.to_thread(
                    emulator.control.advance_clock, (now - last).total_seconds()
                )
                last = now
            await asyncio.sleep(0.02)

    task = asyncio.create_task(follow())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
