"""Logging: JSON lines in production, console for people, ids bound, replay-safe workflow lines."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.unit.logging_probe import JOB_ID


def run_probe(log_format: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tests.unit.logging_probe", log_format],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stderr


def json_lines() -> list[dict[str, Any]]:
    lines = [line for line in run_probe("json").splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line must be JSON


def test_json_lines_carry_job_workflow_and_run_ids() -> None:
    lines = json_lines()
    by_event: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_event.setdefault(line["event"], []).append(line)

    plain = by_event["plain line"][0]
    assert plain["job_id"] == JOB_ID
    assert plain["level"] == "info"
    assert "timestamp" in plain

    for event in ("workflow started", "workflow finished", "activity step"):
        for line in by_event[event]:
            assert line["job_id"] == JOB_ID
            assert line["workflow_id"] == "probe-workflow"
            assert line["run_id"]
            assert "temporal_workflow" not in line
            assert "temporal_activity" not in line


def test_workflow_lines_are_not_repeated_on_replay() -> None:
    events = [line["event"] for line in json_lines()]
    assert events.count("workflow started") == 1
    assert events.count("workflow finished") == 1
    assert events.count("activity step") == 3


def test_console_format_is_for_people() -> None:
    output = run_probe("console")
    line = next(line for line in output.splitlines() if "workflow started" in line)
    assert not line.lstrip().startswith("{")
    assert f"job_id={JOB_ID}" in line
    assert "workflow_id=probe-workflow" in line
