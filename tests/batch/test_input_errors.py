"""Bad input fails the job with line numbers before any provider call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from emulator.server import EmulatorServer
from laneway.settings import Settings
from laneway.status import ProductStatus
from tests.batch.conftest import make_batch_job, request_lines, start_batch, write_jsonl
from tests.conftest import WorkerFactory, batch_outcome

MB = 1024 * 1024


def _no_provider_call(emulator: EmulatorServer) -> None:
    stats = emulator.control.stats()
    assert stats["counts"]["files"] == 0 and stats["counts"]["batches"] == 0
    assert not any(route.startswith(("POST", "GET /v1")) for route in stats["requests"])


async def _run(
    env: WorkflowEnvironment, worker: WorkerFactory, settings: Settings, job: Any
) -> Any:
    async with worker(env):
        return await batch_outcome(await start_batch(env, settings, job))


async def test_duplicate_ids_and_a_malformed_line_name_their_lines(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    lines = [json.dumps(line) for line in request_lines(40)]
    lines[9] = lines[2]  # line 10 repeats req-2 of line 3
    lines[24] = '{"custom_id": "req-24", "method": "POST", '  # line 25 is cut short
    job = make_batch_job(settings, write_jsonl(tmp_path / "in.jsonl", lines))
    outcome = await _run(time_skipping_env, laneway_worker, settings, job)
    assert outcome.status == ProductStatus.FAILED
    assert outcome.reason.startswith("2 of 40 input lines are invalid")
    assert "line 10: custom_id 'req-2' is already used on line 3" in outcome.reason
    assert "line 25: not valid JSON" in outcome.reason
    _no_provider_call(emulator)


async def test_many_bad_lines_show_the_first_then_a_count(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    lines = ["not json"] * 50 + [json.dumps(line) for line in request_lines(10)]
    job = make_batch_job(settings, write_jsonl(tmp_path / "in.jsonl", lines))
    outcome = await _run(time_skipping_env, laneway_worker, settings, job)
    assert outcome.status == ProductStatus.FAILED
    assert "line 1: not valid JSON" in outcome.reason and "line 20:" in outcome.reason
    assert "line 21:" not in outcome.reason and outcome.reason.endswith("and 30 more bad lines")
    _no_provider_call(emulator)


async def test_a_250_mb_input_is_refused_with_the_line_and_the_limit(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    """250 MB in one record: more than one batch file may hold, so no shard could carry it."""
    path = tmp_path / "huge.jsonl"
    with path.open("w") as out:
        out.write(json.dumps(next(iter(request_lines(1)))) + "\n")
        out.write('{"custom_id": "huge", "method": "POST", "url": "/v1/responses", "body": ')
        out.write('{"model": "gpt-4o-mini", "input": "')
        chunk = "x" * MB
        for _ in range(250):
            out.write(chunk)
        out.write('"}}\n')
    assert path.stat().st_size > 250 * MB
    job = make_batch_job(settings, path)
    outcome = await _run(time_skipping_env, laneway_worker, settings, job)
    assert outcome.status == ProductStatus.FAILED
    assert "line 2: the line has 262,144,1" in outcome.reason
    assert "at most 8,388,608 are allowed (max_line_bytes)" in outcome.reason
    _no_provider_call(emulator)


async def test_an_input_over_the_jobs_total_limit_is_refused_before_reading(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", request_lines(2000))
    job = make_batch_job(settings, path, max_input_bytes=100_000)
    outcome = await _run(time_skipping_env, laneway_worker, settings, job)
    assert outcome.status == ProductStatus.FAILED
    assert f"the input has {path.stat().st_size:,} bytes" in outcome.reason
    assert "at most 100,000 (max_input_bytes): split it into several jobs" in outcome.reason
    _no_provider_call(emulator)
