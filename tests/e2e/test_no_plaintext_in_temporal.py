"""No secret and no raw prompt text in Temporal: not in any history, not in its database.

The saved replay corpus (tests/replay/histories) is plaintext by design (it predates the codec
and must keep replaying), so this test scans what the codec protects: a background job and a
batch job run with secret-looking prompt text on a Temporal dev server whose SQLite database
is a file of the test's own, with Laneway's worker and data converter. Their histories (every
run, every shard) and the database file are searched byte for byte.
"""

from __future__ import annotations

from pathlib import Path

from temporalio.api.common.v1 import Payload, SearchAttributes
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from client.jobs import LanewayClient
from dev.binaries import temporal_cli
from laneway.batch import BatchJobSpec, RequestTemplate
from laneway.jobs import JobInput, JobSpec
from laneway.settings import Settings
from tests.batch.conftest import MODEL, write_jsonl
from tests.payload_keys import TEST_PAYLOAD_KEYS, workers_data_converter
from workers.codec import ENCODING
from workers.main import build_worker
from workflows.search_attributes import ALL_KEYS

PROMPT_SECRET = "sk-proj-TOPSECRET-9f8e7d6c5b4a"
BRIEF = f"Summarise the merger memo; the vault code is {PROMPT_SECRET} (do not share)"
TEMPLATE = "Classify for Project NIGHTJAR-7731, confidential: {title}"
RECORD_SECRET = "patient-record-SSN-078-05-1120"


def secrets() -> dict[str, bytes]:
    found = {
        "prompt secret": PROMPT_SECRET.encode(),
        "brief": BRIEF.encode(),
        "template": TEMPLATE.split(":")[0].encode(),
        "record text": RECORD_SECRET.encode(),
    }
    for key_id, key in TEST_PAYLOAD_KEYS.items():
        found[f"payload key {key_id}"] = key.encode()
    return found


PATCH = "core_patch"  # the marker `workflow.patched` records


def payloads_in(history: WorkflowHistory) -> list[Payload]:
    """Every payload of the history (inputs, results, signals, updates, markers, memos)."""
    found: list[Payload] = []

    def walk(message: object) -> None:
        if isinstance(message, SearchAttributes):
            return  # indexed by the server, so never encrypted: no prompt text goes there
        if isinstance(message, Payload):
            found.append(message)
            return
        for field, value in message.ListFields():  # type: ignore[attr-defined]
            if field.message_type is None:
                continue
            if hasattr(value, "ListFields"):
                walk(value)
            else:  # a repeated field, or a map (of messages: the field has a message type)
                for item in value.values() if hasattr(value, "values") else value:
                    if hasattr(item, "ListFields"):
                        walk(item)

    for event in history.events:
        marker = event.marker_recorded_event_attributes
        if event.HasField("marker_recorded_event_attributes") and marker.marker_name == PATCH:
            continue  # written by the SDK's core, not the data converter: the patch id only
        walk(event)
    return found


def database_bytes(directory: Path) -> bytes:
    """The dev server's SQLite database as written: the file and any journal beside it."""
    return b"".join(path.read_bytes() for path in sorted(directory.glob("temporal.db*")))


async def all_histories(client: Client, settings: Settings) -> list[WorkflowHistory]:
    query = f'TaskQueue = "{settings.task_queue}"'
    return [
        await client.get_workflow_handle(found.id, run_id=found.run_id).fetch_history()
        async for found in client.list_workflows(query)
    ]


async def test_histories_and_the_database_hold_no_secret_and_no_prompt_text(
    settings: Settings, tmp_path: Path
) -> None:
    database = tmp_path / "temporal.db"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()),
        dev_server_database_filename=str(database),
        data_converter=workers_data_converter(),
        search_attributes=ALL_KEYS,
        dev_server_log_level="error",
    )
    async with env:
        laneway = LanewayClient(env.client, settings)
        async with build_worker(env.client, settings):
            background = await laneway.start_background_job(
                JobSpec(
                    job_type="research_brief",
                    workspace="acme",
                    requested_by="alice",
                    input=JobInput(model=MODEL, text=BRIEF),
                )
            )
            tickets = write_jsonl(
                tmp_path / "tickets.jsonl",
                [{"id": f"t-{n}", "title": f"{RECORD_SECRET} ticket {n}"} for n in range(5)],
            )
            batch = await laneway.start_batch_job(
                BatchJobSpec(
                    job_type="ticket_triage",
                    workspace="acme",
                    requested_by="alice",
                    input=laneway.store_batch_input(tickets),
                    input_format="records",
                    template=RequestTemplate(
                        endpoint="/v1/responses",
                        model=MODEL,
                        prompt_template=TEMPLATE,
                        id_field="id",
                    ),
                )
            )
            assert (await laneway.wait(background)).status == "completed"
            assert (await laneway.wait(batch)).status == "completed"

        histories = await all_histories(env.client, settings)
        assert {h.workflow_id for h in histories} >= {background, batch}
        assert any("/shard-" in h.workflow_id for h in histories), "the shards are scanned too"
        for history in histories:
            raw = b"".join(event.SerializeToString() for event in history.events)
            for what, secret in secrets().items():
                assert secret not in raw, f"{what} in the history of {history.workflow_id}"
            payloads = payloads_in(history)
            assert payloads, f"no payloads found in {history.workflow_id}"
            for payload in payloads:
                assert payload.metadata.get("encoding") == ENCODING, (
                    f"an unencrypted payload in {history.workflow_id}: {payload.metadata}"
                )

    stored = database_bytes(tmp_path)
    assert background.encode() in stored, "the database holds the jobs (the scan sees them)"
    for what, secret in secrets().items():
        assert secret not in stored, f"{what} in Temporal's database"
