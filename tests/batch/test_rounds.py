"""Recovery rounds: round 2 holds exactly the records round 1 failed retryably or never ran."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI
from temporalio.testing import WorkflowEnvironment

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.artifacts import ArtifactStore
from tests.batch.conftest import (
    batch_fault,
    make_batch_job,
    read_jsonl,
    request_lines,
    start_batch,
    write_jsonl,
)
from tests.conftest import WorkerFactory, batch_outcome

RECORDS = 2000
REFUSED = {f"req-{n}" for n in range(5, RECORDS, 200)}  # no input: the provider answers 400


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    # 500 requests take 50 emulated seconds; an expiring batch ends at its 600 s window.
    return EmulatorConfig(
        speed=600.0, batch_seconds_per_request=0.1, batch_completion_window_seconds=600
    )


def _lines() -> list[dict[str, Any]]:
    lines = list(request_lines(RECORDS))
    for line in lines:
        if line["custom_id"] in REFUSED:
            del line["body"]["input"]
    return lines


def _file_ids(client: OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    text = client.files.content(file_id).text
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _round_facts(client: OpenAI, round_: str) -> dict[str, set[str]]:
    """What the provider saw and answered in one round, read from its own files."""
    sent: set[str] = set()
    succeeded: set[str] = set()
    refused: set[str] = set()
    statuses: list[str] = []
    for batch in client.batches.list(limit=100):
        if (batch.metadata or {}).get("laneway_round") != round_:
            continue
        statuses.append(batch.status)
        sent |= {line["custom_id"] for line in _file_ids(client, batch.input_file_id)}
        succeeded |= {line["custom_id"] for line in _file_ids(client, batch.output_file_id)}
        for line in _file_ids(client, batch.error_file_id):
            if (line.get("response") or {}).get("status_code") == 400:
                refused.add(line["custom_id"])
    return {"sent": sent, "succeeded": succeeded, "refused": refused, "statuses": set(statuses)}


async def test_retryable_failures_and_an_expired_shard_make_exactly_round_two(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    job = make_batch_job(
        settings,
        write_jsonl(tmp_path / "in.jsonl", _lines()),
        shard_limits={"max_requests": 500},
    )
    round_one = {"metadata_key": "laneway_round", "metadata_value": "1"}
    emulator.control.add_fault(
        batch_fault("batch_fail_fraction", job, fraction=0.05, seed=3, match=round_one)
    )
    shard_two = {"metadata_key": "laneway_shard", "metadata_value": "2"}
    emulator.control.add_fault(
        batch_fault("batch_expire", job, fraction=0.5, times=1, match=shard_two)
    )
    async with laneway_worker(time_skipping_env):
        outcome = await batch_outcome(await start_batch(time_skipping_env, settings, job))

    client = OpenAI(base_url=emulator.base_url, api_key="test-key", max_retries=0)
    first, second = _round_facts(client, "1"), _round_facts(client, "2")
    assert "expired" in first["statuses"], "one shard of round 1 expired"
    assert first["sent"] == {f"req-{n}" for n in range(RECORDS)}
    assert first["refused"] <= REFUSED
    retried = first["sent"] - first["succeeded"] - first["refused"]
    assert 250 < len(retried) < 500, "about 5% failed, and half a shard never ran"
    assert second["sent"] == retried, "round 2 holds exactly the failed and missing ids"
    assert second["statuses"] == {"completed"}
    # A refused line that the expired shard never ran is refused in round 2: never twice.
    assert first["refused"] | second["refused"] == REFUSED
    assert not first["refused"] & second["refused"]
    assert second["succeeded"] == retried - REFUSED

    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    assert "10 failed for good" in (outcome.reason or "")
    report = outcome.report
    assert report is not None and report.rounds == 2
    assert report.records.succeeded == RECORDS - len(REFUSED)
    assert report.records.failed == report.records.permanent_failures == len(REFUSED)
    store = ArtifactStore(settings.artifacts_path)
    errors = read_jsonl(store, report.errors)
    assert {e["custom_id"] for e in errors} == REFUSED
    assert all(e["code"] == "missing_required_parameter" and not e["retryable"] for e in errors)
    assert all("input" in e["message"] for e in errors)
    assert {e["custom_id"] for e in errors if e["round"] == 2} == second["refused"]
    results = [r["custom_id"] for r in read_jsonl(store, report.results)]
    assert results == [f"req-{n}" for n in range(RECORDS) if f"req-{n}" not in REFUSED]
