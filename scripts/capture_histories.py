"""Capture the replay corpus: run scenarios and save their workflow histories.

    python scripts/capture_histories.py                  # every scenario
    python scripts/capture_histories.py --only batch_cancel background_happy
    python scripts/capture_histories.py --only batch_rounds --keep-old

Each scenario (tests/replay/scenarios.py) drives a real job with Laneway's worker on its own
time-skipping Temporal test server and OpenAI emulator, then writes its histories to
tests/replay/histories/<workflow type>/<name>.json, replacing the saved one, unless that
one no longer replays against the current code (replacing it would hide the break from CI).
It checks that every file it wrote replays and is listed in the manifest of
tests/replay/test_replay.py, which CI replays. It prints each file it wrote; a scenario that
fails or has a problem is reported, the others still run, and the exit status is 1.

When to capture (the versioning policy in ../shared/DESIGN.md):
- When a workflow changes, the existing histories must still replay: guard a small change
  with `workflow.patched`, put a large one in a new workflow type (or use Worker Versioning).
  Never re-capture to make a failing replay pass: that history is a job running today.
- Re-capture only to add a path: a new scenario, or the new branch of a patched change.
  Commit both old and new: `--keep-old` first renames an existing `<name>.json` to
  `<name>.<date it was captured>.json`; list both in the manifest.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Replayer

from laneway.logging_setup import configure_logging
from tests.payload_keys import workers_data_converter
from tests.replay.scenarios import HISTORIES_DIR, SCENARIOS, Scenario
from tests.replay.test_replay import MANIFEST
from workers.main import WORKFLOWS

MANIFEST_FILE = "tests/replay/test_replay.py"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        choices=sorted(SCENARIOS),
        help="run these scenarios only: " + ", ".join(SCENARIOS),
    )
    parser.add_argument(
        "--keep-old",
        action="store_true",
        help="keep an existing history as <name>.<capture date>.json instead of replacing it",
    )
    return parser.parse_args(argv)


def saved(name: str, workflow_id: str) -> WorkflowHistory | None:
    path = HISTORIES_DIR / name
    return WorkflowHistory.from_json(workflow_id, path.read_text()) if path.exists() else None


def keep_old(name: str, history: WorkflowHistory) -> str | None:
    """Rename a saved history after the day it was captured; its new name, if it moved."""
    captured = history.events[0].event_time.ToDatetime().date()
    path = HISTORIES_DIR / name
    kept = path.with_name(f"{path.stem}.{captured}.json")
    if kept.exists():  # captured twice that day: the one kept first stays
        return None
    path.rename(kept)
    return str(kept.relative_to(HISTORIES_DIR))


def write(name: str, history: WorkflowHistory) -> None:
    path = HISTORIES_DIR / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(history.to_json() + "\n")
    print(f"  wrote    {describe(name, history, path)}")


def unlisted(name: str, workflow_id: str) -> str:
    return f'{name} is not in the manifest of {MANIFEST_FILE}: add "{name}": "{workflow_id}"'


async def replay_failure(history: WorkflowHistory) -> str | None:
    replayer = Replayer(workflows=WORKFLOWS, data_converter=workers_data_converter())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    return None if result.replay_failure is None else str(result.replay_failure)


async def save(name: str, history: WorkflowHistory, keep: bool) -> list[str]:
    """Write one history in place of the saved one; what is wrong, if anything."""
    problems = []
    old = saved(name, history.workflow_id)
    old_failure = None if old is None else await replay_failure(old)
    if old is not None and keep:
        kept = keep_old(name, old)
        print(f"  kept     {kept or 'the older history of that day'}")
        if kept is not None and kept not in MANIFEST:
            problems.append(unlisted(kept, old.workflow_id))
        if kept is not None and old_failure is not None:
            problems.append(f"{kept} no longer replays: guard the change with workflow.patched")
    elif old_failure is not None:
        # Replacing it would hide the break from CI: running jobs have that history.
        return [
            f"{name} not replaced: the saved one no longer replays ({old_failure}). Guard the "
            "change with workflow.patched, or --keep-old to keep it beside the new one"
        ]
    write(name, history)
    if (failure := await replay_failure(history)) is not None:
        problems.append(f"{name} does not replay: {failure}")
    listed = MANIFEST.get(name)
    if listed is None:
        problems.append(unlisted(name, history.workflow_id))
    elif listed != history.workflow_id:
        problems.append(f"{name}: the manifest says {listed}, it ran as {history.workflow_id}")
    return problems


def describe(name: str, history: WorkflowHistory, path: Path) -> str:
    close = EventType.Name(history.events[-1].event_type)
    closed = close.removeprefix("EVENT_TYPE_WORKFLOW_EXECUTION_")
    size = path.stat().st_size // 1024
    return f"{name} ({len(history.events)} events, {size} KB, {closed.lower()})"


async def run(scenario: Scenario, keep: bool) -> bool:
    """Capture one scenario; whether it went through without a problem."""
    started = time.monotonic()
    print(scenario.name)
    try:
        histories = await scenario.capture()
    except Exception as error:
        print(f"  FAILED   {type(error).__name__}: {error}")
        return False
    problems = [p for name in sorted(histories) for p in await save(name, histories[name], keep)]
    for problem in problems:
        print(f"  PROBLEM  {problem}")
    print(f"  took     {time.monotonic() - started:.1f} s")
    return not problems


def quiet_runtime() -> None:
    """Temporal's core logs errors only: its warnings about the test server are expected."""
    logging = LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=logging)))


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Warnings and errors only: a scenario's worker would otherwise log every status change.
    configure_logging("console", "warning")
    quiet_runtime()
    started = time.monotonic()
    names = args.only or list(SCENARIOS)
    unwell = [name for name in names if not await run(SCENARIOS[name], args.keep_old)]
    summary = f"{len(names)} scenarios in {time.monotonic() - started:.0f} s"
    print(summary + (f"; see above: {' '.join(unwell)}" if unwell else ", all saved and replaying"))
    return 1 if unwell else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
