"""Durability: bounded history over hours of polling, and visibility.

Saved histories replay in tests/replay (the replay corpus)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from emulator.server import EmulatorServer
from laneway.background import BackgroundJobInput
from laneway.jobs import ReviewPolicy
from laneway.settings import Settings
from laneway.status import ProductStatus
from tests.background.conftest import job_fault, start_job, wait_for_status
from tests.conftest import WorkerFactory, job_outcome


async def test_six_hours_of_polling_keeps_history_small(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    make_job: Callable[..., BackgroundJobInput],
) -> None:
    job = make_job(provider_deadline=timedelta(hours=6))
    emulator.control.add_fault(job_fault("response_stick", job))
    async with laneway_worker(time_skipping_env):
        handle = await start_job(time_skipping_env, settings, job)
        before = await time_skipping_env.get_current_time()
        outcome = await job_outcome(handle)
        waited = await time_skipping_env.get_current_time() - before
    history = await handle.fetch_history()
    polls = emulator.control.stats()["requests"]["GET /v1/responses/{id}"]
    assert outcome.status == ProductStatus.EXPIRED
    assert waited >= timedelta(hours=5, minutes=59)
    assert polls > 300, "the provider was polled all along (capped at one minute apart)"
    assert len(history.events) < 200


async def test_jobs_in_review_are_found_by_their_search_attributes(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    make_job: Callable[..., BackgroundJobInput],
) -> None:
    job = make_job(review_policy=ReviewPolicy.REQUIRED)
    async with laneway_worker(dev_server_env):
        handle = await start_job(dev_server_env, settings, job)
        await wait_for_status(handle, "needs_review")
        query = (
            "LanewayStatus = 'needs_review' AND LanewayLane = 'background' "
            "AND LanewayWorkspace = 'acme' AND LanewayJobType = 'research_brief'"
        )
        found: list[str] = []
        for _ in range(50):  # visibility is eventually consistent
            found = [w.id async for w in dev_server_env.client.list_workflows(query)]
            if job.job_id in found:
                break
            await asyncio.sleep(0.1)
        assert job.job_id in found
        described = await handle.describe()
        provider_ids = described.typed_search_attributes
        assert any(
            key.name == "LanewayProviderIds" and value
            for key, value in ((p.key, p.value) for p in provider_ids)
        )
        await handle.terminate("test over")
