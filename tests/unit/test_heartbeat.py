"""activities.heartbeat: long async work heartbeats; errors no retry can fix are final."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import activities.heartbeat as heartbeat
from activities.heartbeat import ARTIFACT_ERROR, OUT_OF_MEMORY, beating, in_thread
from store.artifacts import ArtifactNotFound


async def test_async_work_heartbeats_while_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heartbeat, "HEARTBEAT_EVERY_SECONDS", 0.01)
    beats: list[object] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)

    async def download() -> None:
        async with beating():
            await asyncio.sleep(0.2)

    await env.run(download)
    assert len(beats) >= 5


async def test_artifact_errors_and_memory_errors_are_not_retryable() -> None:
    env = ActivityEnvironment()

    def missing() -> None:
        raise ArtifactNotFound("artifact sha256:ab is not in the store")

    def bomb() -> None:
        raise MemoryError

    with pytest.raises(ApplicationError) as caught:
        await env.run(in_thread, missing)
    assert caught.value.non_retryable and caught.value.type == ARTIFACT_ERROR
    assert "is not in the store" in caught.value.message
    with pytest.raises(ApplicationError) as caught:
        await env.run(in_thread, bomb)
    assert caught.value.non_retryable and caught.value.type == OUT_OF_MEMORY
