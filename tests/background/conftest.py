"""Fixtures for the background lane: a job spec factory and a client-side job runner."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from laneway.background import Actor, BackgroundJobInput, ControlRequest, JobOutcome, JobView
from laneway.jobs import JobInput, JobSpec
from laneway.settings import Settings
from tests.conftest import job_view, remember
from workflows.background_job import BackgroundJobWorkflow

WORKSPACE = "acme"
REQUESTER = "alice"
REVIEWER = Actor(id="rita", workspace=WORKSPACE, roles=frozenset({"reviewer"}))
OUTSIDER = Actor(id="oscar", workspace="globex", roles=frozenset({"reviewer"}))
OPERATOR = Actor(id="otto", workspace=WORKSPACE, roles=frozenset({"operator"}))


def control(actor: Actor, note: str = "") -> ControlRequest:
    return ControlRequest(actor=actor, note=note)


def background_job(
    text: str = "Research brief: durable workflows are great.",
    *,
    job_id: str | None = None,
    **spec: Any,
) -> BackgroundJobInput:
    """A research-brief job of acme's alice; `spec` overrides JobSpec fields."""
    job_input = spec.pop("input", None) or JobInput(model="gpt-4o-mini", text=text)
    return BackgroundJobInput(
        job_id=job_id or f"job-{uuid.uuid4().hex[:12]}",
        spec=JobSpec(
            job_type="research_brief",
            workspace=WORKSPACE,
            requested_by=REQUESTER,
            input=job_input,
            **spec,
        ),
    )


@pytest.fixture
def make_job() -> Callable[..., BackgroundJobInput]:
    return background_job


async def start_job(
    env: WorkflowEnvironment, settings: Settings, job: BackgroundJobInput
) -> WorkflowHandle[BackgroundJobWorkflow, JobOutcome]:
    """Start the job's workflow on the test's task queue, as the client would."""
    return remember(
        await env.client.start_workflow(
            BackgroundJobWorkflow.run, job, id=job.job_id, task_queue=settings.task_queue
        )
    )


async def wait_for_status(
    handle: WorkflowHandle[Any, Any], status: str, limit: float = 30
) -> JobView:
    """Query until the job shows `status`."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        view: JobView = await job_view(handle)
        if view.status == status:
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"job never reached {status}; last seen {view.status}")


async def wait_for_provider(handle: WorkflowHandle[Any, Any], limit: float = 30) -> str:
    """Query until the job has a provider response; returns its id."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        view: JobView = await job_view(handle)
        if view.provider_ids:
            return view.provider_ids[-1]
        await asyncio.sleep(0.05)
    raise AssertionError("the job never created a provider response")


def job_fault(kind: str, job: BackgroundJobInput, **fields: Any) -> dict[str, Any]:
    """An emulator fault rule aimed at this job's responses only."""
    match = {"metadata_key": "laneway_job_id", "metadata_value": job.job_id}
    return {"kind": kind, "match": match, **fields}
