"""`laneway demo` (`make demo`): one background job end to end on the embedded stack.

Starts its own stack (Temporal dev server + Web UI, emulator, worker) on free ports with its
data under `var/demo`, runs a research brief that needs review, approves it as a reviewer,
prints the delivered result, its usage and cost and the job's Web UI link, then stops the
stack and leaves no process behind.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

from activities.ledger import Ledger
from client.jobs import LanewayClient
from laneway.background import Actor, JobView
from laneway.jobs import DeliverToOutbox, JobInput, JobSpec, ReviewPolicy
from laneway.settings import Settings
from laneway.status import TERMINAL_PRODUCT_STATUSES
from workers.dev_stack import DevStack, DevStackError

REVIEWER = Actor(id="rita", workspace="demo", roles=frozenset({"reviewer"}))
BRIEF = (
    "Research brief: how durable workflows help teams run long AI jobs. Cover retries, "
    "cancellation, human review and cost. Keep it short; the audience is great and curious."
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def demo_settings(base: Settings) -> Settings:
    """The demo's own data directory and ports, so it never meets a running `laneway dev`."""
    data_dir = base.data_dir / "demo"
    return base.model_copy(
        update={
            "data_dir": data_dir,
            "database_url": None,
            "artifact_dir": None,
            "temporal_address": f"127.0.0.1:{free_port()}",
            "temporal_ui_port": free_port(),
            "emulator_address": f"127.0.0.1:{free_port()}",
            "task_queue": "laneway-demo",
        }
    )


def research_brief(outbox: Path) -> JobSpec:
    return JobSpec(
        job_type="research_brief",
        workspace="demo",
        requested_by="alice",
        input=JobInput(model="gpt-4o-mini", instructions="You write crisp briefs.", text=BRIEF),
        review_policy=ReviewPolicy.REQUIRED,
        side_effect=DeliverToOutbox(directory=str(outbox)),
    )


def say(line: str = "") -> None:
    print(line, flush=True)


async def follow_until_review(client: LanewayClient, job_id: str) -> JobView:
    """Print each status as it changes; stop at needs_review (or an end)."""
    last = ""
    while True:
        view = await client.status(job_id)
        if view.status != last:
            say(f"  status: {view.status}" + (f" ({view.reason})" if view.reason else ""))
            last = view.status
        if view.status == "needs_review" or view.status in TERMINAL_PRODUCT_STATUSES:
            return view
        await asyncio.sleep(0.1)


async def run_job(settings: Settings) -> int:
    client = await LanewayClient.connect(settings)
    outbox = settings.data_dir / "outbox"
    job_id = await client.start_background_job(research_brief(outbox))
    say(f"\nStarted background job {job_id} (research brief for alice, review required)")
    view = await follow_until_review(client, job_id)
    if view.status != "needs_review":
        say(f"The job ended {view.status} before review: {view.reason}")
        return 1
    say(f"  {REVIEWER.id} (reviewer) approves ...")
    await client.approve(job_id, REVIEWER, "clear and sourced")
    outcome = await client.wait(job_id)
    say(f"  status: {outcome.status} ({outcome.reason})")
    delivered = json.loads((outbox / f"{job_id}.json").read_text())
    usage = outcome.result.usage if outcome.result else None
    say(f"\nDelivered to {outbox / (job_id + '.json')}:\n  {delivered['output']}")
    if usage is not None and outcome.result is not None:
        say(
            f"\nUsage: {usage.input_tokens} input + {usage.output_tokens} output tokens on "
            f"{outcome.result.model}; cost ${outcome.result.cost_usd:.6f} at standard price"
        )
    say("\nAudit trail:")
    for event in Ledger.from_url(settings.ledger_url).list_events(job_id):
        moved = event.to_status and event.to_status != event.from_status
        to = f" -> {event.to_status}" if moved else ""
        say(f"  {event.at:%H:%M:%S} {event.kind}{to} by {event.actor} {event.note}".rstrip())
    # The demo's stack is gone when it ends; its Temporal state stays in the data directory.
    ui = f"http://127.0.0.1:8233/namespaces/{settings.temporal_namespace}/workflows/{job_id}"
    say(f"\nWeb UI: {ui}")
    say(f"  (browse it after the demo with: LANEWAY_DATA_DIR={settings.data_dir} make dev)")
    return 0 if outcome.status == "completed" else 1


def run_demo(base: Settings) -> int:
    settings = demo_settings(base)
    stack = DevStack(settings)
    try:
        say(f"Starting the embedded stack (data in {settings.data_dir}) ...")
        stack.start(say)
        return asyncio.run(run_job(settings))
    except DevStackError as error:
        print(f"laneway demo: {error}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
        say("Stack stopped.")
