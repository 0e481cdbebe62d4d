"""Between rounds, a long history continues the job as a new run; nothing is lost on the way."""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from emulator.server import EmulatorServer
from laneway.settings import Settings
from laneway.status import ProductStatus
from store.artifacts import ArtifactStore
from store.ledger import Ledger
from tests.batch.conftest import (
    batch_fault,
    classify_template,
    make_batch_job,
    records,
    start_batch,
    write_jsonl,
)
from tests.conftest import WorkerFactory, batch_outcome, batch_view


async def test_each_round_in_a_new_run_keeps_records_and_audit_trail(
    time_skipping_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    settings: Settings,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", records(400))
    job = make_batch_job(
        settings,
        path,
        template=classify_template(),
        shard_limits={"max_requests": 150},
        job_input={"continue_as_new_after_events": 1},
    )
    for round_ in ("1", "2"):  # some results go missing in rounds 1 and 2
        emulator.control.add_fault(
            batch_fault(
                "batch_omit_results",
                job,
                fraction=0.2,
                seed=int(round_),
                match={"metadata_key": "laneway_round", "metadata_value": round_},
            )
        )
    client = time_skipping_env.client
    async with laneway_worker(time_skipping_env):
        handle = await start_batch(time_skipping_env, settings, job)
        outcome = await batch_outcome(handle)
        view = await batch_view(handle)

    assert outcome.status == ProductStatus.COMPLETED, outcome.reason
    assert outcome.report is not None and outcome.report.rounds == 3
    assert view.round == 3 and view.records.succeeded == 400
    assert len(view.provider_ids) >= 5, "batch ids of every run are kept"
    with ArtifactStore(settings.artifacts_path).open(outcome.report.results) as results:
        assert [json.loads(line)["custom_id"] for line in results] == [
            f"rec-{n}" for n in range(400)
        ]

    run_id = handle.first_execution_run_id
    assert run_id is not None
    runs = 0
    while run_id:
        runs += 1
        history = await client.get_workflow_handle(job.job_id, run_id=run_id).fetch_history()
        assert len(history.events) < 200
        last = history.events[-1]
        if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            break
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    assert runs == 3, "one run per round"

    events = Ledger.from_url(settings.ledger_url).list_events(job.job_id)
    round_notes = [e.note for e in events if e.note.startswith("round ")]
    assert [note.split(":")[0] for note in round_notes] == ["round 1", "round 2", "round 3"]
    assert events[-1].to_status == ProductStatus.COMPLETED
    assert len({e.event_key for e in events}) == len(events)
