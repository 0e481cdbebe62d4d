"""The batch half of `laneway demo`: 2,000 support tickets classified through the Batch API.

As a backend service would: write the tickets as JSONL, stream them into the artifact store,
start a batch job with a request template, follow its progress (rounds and record counts),
and print the report: every record accounted for, the files, and the cost at batch price
beside the same tokens at standard price.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

from client.jobs import LanewayClient
from laneway.batch import BatchJobSpec, BatchOutcome, BatchProgress, RequestTemplate, ShardLimits
from laneway.pricing import format_usd
from laneway.status import ProductStatus, is_terminal
from store.artifacts import ArtifactStore

TICKETS = 2000
TOPICS = ("billing", "login", "export", "invoice", "latency", "mobile app", "password reset")
STEP_LIMIT_SECONDS = 90.0
POLL_SECONDS = 0.05


def write_tickets(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for n in range(TICKETS):
            topic = TOPICS[n % len(TOPICS)]
            ticket = {"ticket_id": f"T-{n:05d}", "subject": f"Question about {topic} (#{n})"}
            out.write(json.dumps(ticket) + "\n")
    return path


def triage_spec(
    client: LanewayClient, tickets: Path, workspace: str, requester: str
) -> BatchJobSpec:
    return BatchJobSpec(
        job_type="ticket_triage",
        workspace=workspace,
        requested_by=requester,
        input=client.store_batch_input(tickets),
        input_format="records",
        template=RequestTemplate(
            endpoint="/v1/responses",
            model="gpt-4o-mini",
            prompt_template="Route this support ticket to a team: {subject}",
            id_field="ticket_id",
            max_output_tokens=16,
        ),
        shard_limits=ShardLimits(max_requests=800),  # three shards, to show them
    )


def _progress_line(view: BatchProgress) -> str:
    c = view.records
    if view.round == 0:
        return f"{view.status:<9} validating the input and planning shards"
    return (
        f"{view.status:<9} round {view.round}: {c.succeeded:>5} of {c.total} succeeded, "
        f"{c.failed} failed, {c.pending} pending, {view.shards_in_flight} shards in flight"
    )


async def follow(client: LanewayClient, job_id: str, say: Callable[[str], None]) -> BatchOutcome:
    """One line per change of status or counts, until the job ends."""
    started, last = time.monotonic(), ""
    while True:
        view = await client.batch_status(job_id)
        line = _progress_line(view)
        if line != last:
            say(f"  {time.monotonic() - started:5.1f}s  {line}")
            last = line
        if is_terminal(view.status):
            return await client.wait_batch(job_id)
        if time.monotonic() - started > STEP_LIMIT_SECONDS:
            raise TimeoutError(f"the batch job did not finish in {STEP_LIMIT_SECONDS:.0f}s")
        await asyncio.sleep(POLL_SECONDS)


def print_report(client: LanewayClient, outcome: BatchOutcome, say: Callable[[str], None]) -> None:
    report = outcome.report
    if report is None:
        return
    store = ArtifactStore(client.settings.artifacts_path)
    c = report.records
    say(
        f"\nEvery record accounted for: {c.succeeded} succeeded, {c.failed} failed, "
        f"{c.pending} never sent, in {report.rounds} round(s)"
    )
    first = b"".join(client.read_artifact(report.results)).split(b"\n", 1)[0]
    joined = json.loads(first)
    say(f"Results (joined on custom_id, in input order): {store.path_for(report.results)}")
    say(
        f"  first line: {joined['custom_id']} {joined['record']['subject']!r} -> "
        f"{joined['response']['output'][0]['content'][0]['text'][:60]!r}"
    )
    say(f"Errors ({report.errors.size_bytes} bytes): {store.path_for(report.errors)}")
    say(f"Report: {store.path_for(report.report)}")
    usage = report.usage
    say(f"Usage: {usage.input_tokens} input + {usage.output_tokens} output tokens")
    if report.cost_batch_usd is not None and report.cost_standard_usd is not None:
        say(
            f"Cost:  {format_usd(report.cost_batch_usd)} at batch price "
            f"({format_usd(report.cost_standard_usd)} at standard price)"
        )


async def run_batch_demo(
    client: LanewayClient,
    workspace: str,
    requester: str,
    say: Callable[[str], None],
    web_ui_link: Callable[[str], str],
) -> BatchOutcome:
    tickets = write_tickets(client.settings.data_dir / "tickets.jsonl")
    spec = triage_spec(client, tickets, workspace, requester)
    job_id = await client.start_batch_job(spec)
    say(f"\nBatch job {job_id}")
    say(
        f"  {TICKETS} support tickets from {tickets.name}, routed by gpt-4o-mini through the "
        "Batch API in shards of 800"
    )
    outcome = await follow(client, job_id, say)
    if outcome.status != ProductStatus.COMPLETED:
        raise RuntimeError(f"the batch job ended {outcome.status}: {outcome.reason}")
    print_report(client, outcome, say)
    return outcome
