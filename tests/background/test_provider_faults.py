"""Provider faults: a 429 storm is waited out; a 401 fails the job fast, in the provider's words."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from temporalio.testing import WorkflowEnvironment

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from laneway.background import BackgroundJobInput
from laneway.settings import Settings
from laneway.status import ProductStatus
from tests.background.conftest import start_job, wait_for_status
from tests.conftest import WorkerFactory, job_outcome


async def test_429_storm_then_recovery_completes_with_one_response(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    make_job: Callable[..., BackgroundJobInput],
) -> None:
    storm = {"kind": "http_429", "match": {"path_prefix": "/v1/responses"}, "retry_after": 1}
    emulator.control.add_fault({**storm, "times": 6})
    job = make_job()
    async with laneway_worker(time_skipping_env):
        outcome = await job_outcome(await start_job(time_skipping_env, settings, job))
    assert outcome.status == ProductStatus.COMPLETED
    stats = emulator.control.stats()
    assert stats["counts"]["responses"] == 1
    assert stats["faults"][0]["fired"] == 6


class TestWrongKey:
    @pytest.fixture
    def emulator_config(self) -> EmulatorConfig:
        return EmulatorConfig(speed=600.0, api_key="the-right-key")

    async def test_401_fails_fast_with_the_providers_message(
        self,
        time_skipping_env: WorkflowEnvironment,
        laneway_worker: WorkerFactory,
        settings: Settings,
        emulator: EmulatorServer,
        make_job: Callable[..., BackgroundJobInput],
    ) -> None:
        assert settings.openai_api_key != "the-right-key"
        job = make_job()
        async with laneway_worker(time_skipping_env):
            started = time.monotonic()
            handle = await start_job(time_skipping_env, settings, job)
            failed = await wait_for_status(handle, "failed")
            assert time.monotonic() - started < 5
            outcome = await job_outcome(handle)
        assert failed.reason is not None
        assert failed.reason.startswith("the provider refused the request: 401: ")
        assert "API key" in failed.reason
        assert outcome.status == ProductStatus.FAILED
        assert emulator.control.stats()["counts"]["responses"] == 0
