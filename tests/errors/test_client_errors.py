"""The Python client raises only its own errors, even while Temporal is down, and says when an
action's fate is unknown. Each test runs a Temporal dev server of its own and stops it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from client.jobs import (
    ActionFateUnknown,
    InvalidJobId,
    LanewayClient,
    LanewayClientError,
    TemporalUnreachable,
)
from dev.binaries import temporal_cli
from laneway.background import Actor
from laneway.settings import Settings
from tests.client.conftest import research_brief
from tests.payload_keys import keyed_settings, workers_data_converter
from workflows.search_attributes import ALL_KEYS

UNREACHABLE = "127.0.0.1:1"
RITA = Actor(id="rita", workspace="acme", roles={"reviewer"})
ALICE = Actor(id="alice", workspace="acme")


@pytest.fixture
async def own_server() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server this test may stop (shutting it down twice is harmless)."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()),
        data_converter=workers_data_converter(),
        search_attributes=ALL_KEYS,
        ui=False,
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


def settings_for(env: WorkflowEnvironment, tmp_path: Path) -> Settings:
    # A task queue nobody serves: jobs stay queued and Updates wait for an answer.
    return keyed_settings(
        temporal_address=env.client.service_client.config.target_host,
        task_queue=f"nobody-{uuid.uuid4().hex[:8]}",
        data_dir=tmp_path,
    )


async def test_an_unreachable_address_is_a_client_error(tmp_path: Path) -> None:
    settings = keyed_settings(temporal_address=UNREACHABLE, data_dir=tmp_path)
    with pytest.raises(TemporalUnreachable, match=f"cannot reach Temporal at {UNREACHABLE}"):
        await LanewayClient.connect(settings)


async def test_reads_while_temporal_is_down_raise_client_errors(
    own_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = settings_for(own_server, tmp_path)
    client = await LanewayClient.connect(settings)
    job_id = await client.start_background_job(research_brief())
    await own_server.shutdown()

    for call in (
        lambda: client.list_jobs(workspace="acme"),
        lambda: client.describe_job(job_id),
        lambda: client.status(f"job-{uuid.uuid4().hex}"),
        lambda: client.wait(f"job-{uuid.uuid4().hex}"),
    ):
        with pytest.raises(TemporalUnreachable) as raised:
            await call()
        assert f"cannot reach Temporal at {settings.temporal_address}" in str(raised.value)


async def test_an_action_whose_answer_never_came_says_its_fate_is_unknown(
    own_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    client = await LanewayClient.connect(settings_for(own_server, tmp_path))
    job_id = await client.start_background_job(research_brief())
    # No worker: the cancel Update is sent and waits for an answer that never comes, because
    # the server goes away while it waits.
    cancel = asyncio.create_task(client.cancel(job_id, ALICE, "not needed"))
    await asyncio.sleep(3)
    assert not cancel.done()
    await own_server.shutdown()
    with pytest.raises(ActionFateUnknown) as raised:
        await asyncio.wait_for(cancel, 120)
    message = str(raised.value)
    assert f"the cancel of job {job_id} was sent" in message
    assert "no answer came" in message and "check the job's status" in message


async def test_a_start_whose_answer_never_came_says_its_fate_is_unknown(
    own_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    client = await LanewayClient.connect(settings_for(own_server, tmp_path))
    await own_server.shutdown()
    job_id = f"job-{uuid.uuid4().hex}"
    with pytest.raises(ActionFateUnknown, match=f"the start of job {job_id} was sent"):
        await client.start_background_job(research_brief(), job_id=job_id)


@pytest.mark.parametrize("bad", ["../x", "a/b", "with space", "", "x" * 201, ".hidden"])
async def test_an_id_no_surface_could_reach_is_refused(
    bad: str, own_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    client = LanewayClient(own_server.client, settings_for(own_server, tmp_path))
    with pytest.raises(InvalidJobId) as raised:
        await client.start_background_job(research_brief(), job_id=bad)
    assert isinstance(raised.value, LanewayClientError)
    assert "job id" in str(raised.value)
    assert [job async for job in own_server.client.list_workflows(f'WorkflowId = "{bad}"')] == []
