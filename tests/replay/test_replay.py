"""The replay corpus: every saved workflow history replays against the current workflow code.

A saved history is a job as an earlier version of the code ran it; a worker that picks up
such a job must make the same decisions again, or the job breaks mid-flight. So:
- When a workflow changes, the existing histories must still replay. Guard a small change
  with `workflow.patched` (old histories take the old branch); put a large one in a new
  workflow type (or use Worker Versioning). Never re-capture to make a failing replay pass.
- Re-capture only to add a path: a new scenario, or the new branch of a patched change
  (`python scripts/capture_histories.py --only NAME --keep-old` keeps the old history as
  `<name>.<capture date>.json`). Commit both old and new, and list both below.

The manifest names every history and the workflow id it ran under (a batch job's child ids
derive from it, and replay checks them). A listed file that is missing fails: this test
never writes one. A file that is not listed fails too, so the directory and manifest agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.payload_keys import workers_data_converter
from workers.main import WORKFLOWS

HISTORIES_DIR = Path(__file__).parent / "histories"

# path under histories/ -> the workflow id it ran under
MANIFEST: dict[str, str] = {
    "BackgroundJobWorkflow/happy.json": "replay-background-happy",
    "BackgroundJobWorkflow/review_approve.json": "replay-background-review-approve",
    # From the first version of the workflow (before it shared job_common with the batch lane).
    "BackgroundJobWorkflow/review_reject.json": "replay-background-review-reject",
    "BackgroundJobWorkflow/review_expiry.json": "replay-background-review-expiry",
    "BackgroundJobWorkflow/failed_hold_retry.json": "replay-background-failed-hold-retry",
    "BackgroundJobWorkflow/cancel.json": "replay-background-cancel",
    "BatchJobWorkflow/happy.json": "replay-batch-happy",
    "BatchJobWorkflow/rounds.json": "replay-batch-rounds",
    "BatchJobWorkflow/continue_as_new_run1.json": "replay-batch-continue-as-new",
    "BatchJobWorkflow/continue_as_new_run2.json": "replay-batch-continue-as-new",
    "BatchJobWorkflow/plan_approval.json": "replay-batch-plan-approval",
    "BatchJobWorkflow/cancel.json": "replay-batch-cancel",
    "BatchJobWorkflow/provider_failure.json": "replay-batch-provider-failure",
    "BatchShardWorkflow/poll_to_completion.json": "replay-batch-happy/round-1/shard-0",
    "BatchShardWorkflow/stopped.json": "replay-batch-cancel/round-1/shard-0",
    "BatchShardWorkflow/token_limit_resubmit.json": "replay-shard-token-limit/round-1/shard-0",
}


@pytest.fixture(scope="module")
def replayer() -> Replayer:
    return Replayer(workflows=WORKFLOWS, data_converter=workers_data_converter())


@pytest.mark.parametrize(("name", "workflow_id"), sorted(MANIFEST.items()))
async def test_saved_history_replays(replayer: Replayer, name: str, workflow_id: str) -> None:
    path = HISTORIES_DIR / name
    if not path.exists():
        pytest.fail(
            f"{name} is missing: run `python scripts/capture_histories.py` (or --only the "
            "scenario that saves it) and commit the file"
        )
    history = WorkflowHistory.from_json(workflow_id, json.loads(path.read_text()))
    await replayer.replay_workflow(history, raise_on_replay_failure=True)


def test_every_saved_history_is_in_the_manifest() -> None:
    saved = {str(p.relative_to(HISTORIES_DIR)) for p in HISTORIES_DIR.rglob("*") if p.is_file()}
    unlisted = sorted(saved - MANIFEST.keys())
    assert not unlisted, f"histories not in the manifest of {__name__}: {unlisted}"
