"""Stopping a batch job while its batches run: the provider hears it, partial results stay.

The batches are pinned part-way by `batch_expire` (they run a share of their requests, then
wait for a 24-hour window that never comes within the test), so "mid-run" is a state the test
sees, not a race against the clock. While the test waits, the time-skipping server's clock
runs at real speed; a fast polling policy keeps each step short.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from openai.types import Batch
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from laneway.background import Actor, ControlRequest, PollingPolicy
from laneway.batch import BatchJobInput, BatchProgress, RecordState, ShardOutcome
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.artifacts import ArtifactStore
from store.ledger import Ledger
from store.ledger.batch_records import BatchRecords, StoredRecord
from tests.batch.conftest import (
    REQUESTER,
    batch_fault,
    classify_template,
    make_batch_job,
    provider_batches,
    read_jsonl,
    records,
    start_batch,
    wait_until,
    write_jsonl,
)
from tests.conftest import WorkerFactory, batch_outcome
from workflows.batch_job import BatchJobWorkflow

FAST_POLLING = PollingPolicy(
    first_interval=timedelta(milliseconds=200),
    backoff=1.0,
    max_interval=timedelta(milliseconds=200),
)
THE_REQUESTER = Actor(id=REQUESTER, workspace="acme")
OUTSIDER = Actor(id="oscar", workspace="globex", roles=frozenset({"operator"}))


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    # A pinned batch waits for its 24-hour window: 144 real seconds at this speed.
    return EmulatorConfig(speed=600.0, batch_seconds_per_request=0.1)


def _meta(batch: Batch, key: str) -> str:
    return (batch.metadata or {})[key]


def _rows(settings: Settings, job: BatchJobInput) -> list[StoredRecord]:
    engine = Ledger.from_url(settings.ledger_url).engine
    return list(BatchRecords(engine).records_in_order(job.job_id))


async def _until(what: str, check: Callable[[], bool], limit: float = 30) -> None:
    for _ in range(int(limit / 0.05)):
        if await asyncio.to_thread(check):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def _pinned(emulator: EmulatorServer, count: int, done: int, **metadata: str) -> Callable[[], bool]:
    """`count` batches with this metadata are in progress with exactly `done` requests run."""

    def check() -> bool:
        found = [
            b
            for b in provider_batches(emulator)
            if all(_meta(b, f"laneway_{k}") == v for k, v in metadata.items())
        ]
        return len(found) == count and all(
            b.status == "in_progress" and b.request_counts and b.request_counts.completed == done
            for b in found
        )

    return check


async def _shard_outcome(client: Client, child_id: str) -> ShardOutcome:
    outcome: ShardOutcome = await client.get_workflow_handle(
        child_id, result_type=ShardOutcome
    ).result()
    return outcome


async def test_cancel_update_during_a_retry_round(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    """Round 2 has two shards, one in flight (half done) and one never submitted; the
    requester cancels: the batch in flight is cancelled at the provider, round 1's results and
    the half batch's results stay, the unsent shard is counted as never sent."""
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(400)),
        template=classify_template(),
        shard_limits={"max_requests": 100},
        max_shards_in_flight=1,
        job_input={"polling": FAST_POLLING},
    )
    round_one = {"metadata_key": "laneway_round", "metadata_value": "1"}
    emulator.control.add_fault(
        batch_fault("batch_fail_fraction", job, fraction=0.3, seed=0, match=round_one)
    )
    round_two = {"metadata_key": "laneway_round", "metadata_value": "2"}
    emulator.control.add_fault(batch_fault("batch_expire", job, fraction=0.5, match=round_two))
    client = time_skipping_env.client
    async with laneway_worker(time_skipping_env):
        handle = await start_batch(time_skipping_env, settings, job)
        await _until("a round-2 batch half done", _pinned(emulator, 1, 50, round="2", shard="0"))
        running = await wait_until(handle, lambda v: v.round == 2 and v.shards_in_flight == 1)
        assert running.status == ProductStatus.RUNNING and "cancel" in running.allowed_actions
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                BatchJobWorkflow.cancel, ControlRequest(actor=OUTSIDER, note="mine now")
            )
        assert "oscar may not cancel jobs of workspace acme" in str(refused.value.cause)
        view = await handle.execute_update(
            BatchJobWorkflow.cancel, ControlRequest(actor=THE_REQUESTER, note="wrong prompt")
        )
        outcome = await batch_outcome(handle)
        in_flight = await _shard_outcome(client, f"{job.job_id}/round-2/shard-0")

    batches = provider_batches(emulator)
    second = [b for b in batches if _meta(b, "laneway_round") == "2"]
    assert [(_meta(b, "laneway_shard"), b.status) for b in second] == [("0", "cancelled")]
    assert len(batches) == 5, "four batches in round 1, one in round 2: shard 1 never sent"

    rows = _rows(settings, job)
    assert len(rows) == 400
    first = [r for r in rows if r.round == 1]
    assert 280 <= len(first) < 300 and all(r.state is RecordState.SUCCEEDED for r in first)
    shard0 = Counter((r.state, r.error_code) for r in rows if (r.round, r.shard) == (2, 0))
    assert shard0 == {
        (RecordState.SUCCEEDED, None): 50,
        (RecordState.MISSING, "batch_cancelled"): 50,
    }
    never_sent = [r for r in rows if (r.round, r.shard) == (2, 1)]
    assert never_sent and all(r.state is RecordState.PENDING for r in never_sent)

    # The half batch's results are kept: its output file is stored, each success points into it.
    store = ArtifactStore(settings.artifacts_path)
    assert in_flight.final_status == "cancelled" and in_flight.output_file is not None
    kept = {line["custom_id"] for line in read_jsonl(store, in_flight.output_file)}
    assert kept == {r.custom_id for r in rows if r.round == 2 and r.state is RecordState.SUCCEEDED}
    assert all(r.output_uri == in_flight.output_file.uri for r in rows if r.custom_id in kept)

    succeeded = len(first) + 50
    assert view.status == outcome.status == ProductStatus.CANCELED
    assert outcome.reason == (
        f"cancelled by {REQUESTER}: wrong prompt ({succeeded} of 400 succeeded, 50 failed, "
        f"{len(never_sent)} never sent)"
    )
    assert isinstance(view, BatchProgress)
    assert view.records.pending == len(never_sent) and view.records.succeeded == succeeded
    ledger = Ledger.from_url(settings.ledger_url)
    record = ledger.get_job(job.job_id)
    assert record is not None and record.status == ProductStatus.CANCELED
    assert ledger.list_events(job.job_id)[-1].actor == REQUESTER


async def _in_backoff(
    client: Client, child_id: str, backoff: timedelta = timedelta(hours=6)
) -> bool:
    """The shard waits on its durable backoff timer (a refused batch behind it); the shorter
    timers that watch for a stuck batch are not it."""
    history = await client.get_workflow_handle(child_id).fetch_history()
    return any(
        e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
        and e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta() == backoff
        for e in history.events
    )


async def test_temporal_cancellation_with_one_shard_in_flight_and_one_in_backoff(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(200)),
        template=classify_template(),
        shard_limits={"max_requests": 100},
        job_input={"polling": FAST_POLLING, "token_limit_backoff": timedelta(hours=6)},
    )
    shard = "{}/round-1/shard-{}".format
    only = {"metadata_key": "laneway_shard", "metadata_value": "0"}
    emulator.control.add_fault(batch_fault("batch_expire", job, fraction=0.3, match=only))
    refused = {"metadata_key": "laneway_shard", "metadata_value": "1"}
    emulator.control.add_fault(
        batch_fault("batch_token_limit_exceeded", job, times=1, match=refused)
    )
    client = time_skipping_env.client
    async with laneway_worker(time_skipping_env):
        handle = await start_batch(time_skipping_env, settings, job)
        await _until("shard 0 pinned", _pinned(emulator, 1, 30, shard="0"))
        for _ in range(600):
            if await _in_backoff(client, shard(job.job_id, 1)):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("shard 1 never started its token-limit backoff")
        await handle.cancel()
        outcome = await batch_outcome(handle)
        closed = await handle.describe()
        backed_off = await _shard_outcome(client, shard(job.job_id, 1))

    # A canceled job closes Canceled, and its outcome stays readable.
    assert closed.status == WorkflowExecutionStatus.CANCELED
    assert outcome.status == ProductStatus.CANCELED and outcome.report is not None
    batches = sorted(provider_batches(emulator), key=lambda b: _meta(b, "laneway_shard"))
    assert [(_meta(b, "laneway_shard"), b.status) for b in batches] == [
        ("0", "cancelled"),
        ("1", "failed"),
    ], "the refused shard submitted nothing more"
    rows = _rows(settings, job)
    states = Counter((r.shard, r.state, r.error_code) for r in rows)
    assert states == {
        (0, RecordState.SUCCEEDED, None): 30,
        (0, RecordState.MISSING, "batch_cancelled"): 70,
        (1, RecordState.MISSING, "not_submitted"): 100,
    }
    assert backed_off.batch_ids == [batches[1].id] and backed_off.succeeded == 0
    record = Ledger.from_url(settings.ledger_url).get_job(job.job_id)
    assert record is not None and record.status == ProductStatus.CANCELED
    events = Ledger.from_url(settings.ledger_url).list_events(job.job_id)
    assert events[-1].note.startswith("cancelled through Temporal (30 of 200 succeeded")


async def test_a_terminated_job_still_has_its_shards_cancel_their_batches(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    """Termination gives the job no say; its children (parent close policy REQUEST_CANCEL)
    cancel the provider batches and keep what ran. On the dev server: the time-skipping test
    server does not apply parent close policies."""
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", records(200)),
        template=classify_template(),
        shard_limits={"max_requests": 100},
        job_input={"polling": FAST_POLLING},
    )
    emulator.control.add_fault(batch_fault("batch_expire", job, fraction=0.4))
    client = dev_server_env.client
    async with laneway_worker(dev_server_env):
        handle = await start_batch(dev_server_env, settings, job)
        await _until("both batches pinned", _pinned(emulator, 2, 40, round="1"))
        await handle.terminate(reason="operator pulled the plug")
        for index in range(2):
            with pytest.raises(WorkflowFailureError) as failure:
                await _shard_outcome(client, f"{job.job_id}/round-1/shard-{index}")
            assert isinstance(failure.value.cause, CancelledError)

    assert [b.status for b in provider_batches(emulator)] == ["cancelled", "cancelled"]
    states = Counter((r.state, r.error_code) for r in _rows(settings, job))
    assert states == {
        (RecordState.SUCCEEDED, None): 80,
        (RecordState.MISSING, "batch_cancelled"): 120,
    }
