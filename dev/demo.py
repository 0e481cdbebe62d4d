"""`laneway demo` (`make demo`): a background job and a batch job on a throwaway local stack.

Starts its own stack (Temporal dev server + Web UI, OpenAI emulator, worker) on free ports
with its data under `<data dir>/demo`, so it never meets a running `laneway dev`. Then, as a
backend service would through `LanewayClient`: alice starts a research brief that needs
review and is delivered to an outbox, its status is shown as it moves, rita approves it, and
the delivered text, its usage and cost, the audit trail and the Web UI link are printed.
Then 2,000 support tickets go through the Batch API as one batch job (client/batch_demo.py).
Finally the stack stops and no process is left behind.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from client.jobs import LanewayClient, LanewayClientError
from dev.batch_demo import run_batch_demo
from dev.stack import AlreadyRunningError, DevStack, DevStackError, single_instance
from laneway.background import REVIEWER_ROLE, Actor, JobOutcome
from laneway.jobs import DeliverToOutbox, JobInput, JobSpec, ReviewPolicy
from laneway.lifecycle import JobState
from laneway.pricing import format_usd
from laneway.settings import Settings
from laneway.status import ProductStatus, is_terminal
from store.ledger import Ledger

WORKSPACE = "demo"
REQUESTER = "alice"
REVIEWER = Actor(id="rita", workspace=WORKSPACE, roles=frozenset({REVIEWER_ROLE}))
REVIEW_NOTE = "reads well; deliver it"
BRIEF = (
    "Research brief: how durable workflows help teams run long AI jobs. Cover retries, "
    "cancellation, human review and cost. Keep it short; the audience is great and curious."
)
# The emulator answers in about a second; these only stop a broken stack from hanging.
STEP_LIMIT_SECONDS = 60.0
POLL_SECONDS = 0.05


class DemoFailed(Exception):
    """The job did not go the way the demo shows; the message says what happened instead."""


def say(line: str = "") -> None:
    print(line, flush=True)


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that nothing listens on right now."""
    with ExitStack() as sockets:
        probes = [sockets.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:  # all bound at once, so the kernel cannot hand out one twice
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def demo_settings(base: Settings) -> Settings:
    """Own data directory, ports and task queue, so the demo never meets a `laneway dev`."""
    temporal_port, ui_port, emulator_port, api_port = free_ports(4)
    return base.model_copy(
        update={
            "data_dir": base.data_dir / "demo",
            "database_url": None,
            "artifact_dir": None,
            "temporal_address": f"127.0.0.1:{temporal_port}",
            "temporal_ui_port": ui_port,
            "emulator_address": f"127.0.0.1:{emulator_port}",
            "api_address": f"127.0.0.1:{api_port}",
            "task_queue": "laneway-demo",
        }
    )


def workflow_url(settings: Settings, job_id: str) -> str:
    return f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}/workflows/{job_id}"


def research_brief() -> JobSpec:
    return JobSpec(
        job_type="research_brief",
        workspace=WORKSPACE,
        requested_by=REQUESTER,
        input=JobInput(model="gpt-4o-mini", instructions="You write crisp briefs.", text=BRIEF),
        review_policy=ReviewPolicy.REQUIRED,
        side_effect=DeliverToOutbox(path="briefs"),
    )


class Progress:
    """Prints one line per status change, with the seconds since the job started."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.last_status: str | None = None

    def line(self, text: str) -> None:
        say(f"  {time.monotonic() - self.started:5.1f}s  {text}")

    def show(self, view: JobState) -> None:
        if view.status != self.last_status:
            self.last_status = view.status
            self.line(f"{view.status:<13} {view.reason or ''}".rstrip())


async def follow_until_review(client: LanewayClient, job_id: str, progress: Progress) -> None:
    deadline = time.monotonic() + STEP_LIMIT_SECONDS
    while True:
        view = await client.status(job_id)
        progress.show(view)
        if view.status == ProductStatus.NEEDS_REVIEW:
            return
        if is_terminal(view.status):
            raise DemoFailed(f"the job ended {view.status} before review: {view.reason}")
        if time.monotonic() > deadline:
            raise DemoFailed(f"the job did not reach review in {STEP_LIMIT_SECONDS:.0f}s")
        await asyncio.sleep(POLL_SECONDS)


async def review_and_finish(client: LanewayClient, job_id: str, progress: Progress) -> JobOutcome:
    progress.line(f'{REVIEWER.id} (reviewer in {WORKSPACE}) approves: "{REVIEW_NOTE}"')
    progress.show(await client.approve(job_id, REVIEWER, REVIEW_NOTE))
    outcome = await asyncio.wait_for(client.wait_background(job_id), STEP_LIMIT_SECONDS)
    if outcome.status != ProductStatus.COMPLETED or not outcome.side_effect_ran:
        raise DemoFailed(f"the job ended {outcome.status}: {outcome.reason}")
    return outcome


def print_delivery(outbox_file: Path, outcome: JobOutcome) -> None:
    delivered = json.loads(outbox_file.read_text())
    say(f"\nDelivered to {outbox_file}:")
    say(textwrap.indent(textwrap.fill(delivered["output"], width=88), "  "))
    result = outcome.result
    if result is None:
        return
    usage = result.usage
    say(
        f"Usage: {usage.input_tokens} input + {usage.output_tokens} output = "
        f"{usage.total_tokens} tokens ({result.model}, {result.tier} tier)"
    )
    if result.cost_usd is None:
        say("Cost:  unknown (Laneway has no price for this model)")
    else:
        say(f"Cost:  {format_usd(result.cost_usd)}")


def print_audit_trail(settings: Settings, job_id: str) -> None:
    say("\nAudit trail (the job ledger):")
    ledger = Ledger.from_url(settings.ledger_url)
    for event in ledger.list_events(job_id):
        moved = event.to_status != event.from_status or event.kind == "created"
        what = f"{event.kind} -> {event.to_status}" if moved else event.kind
        say(f"  {event.at:%H:%M:%S}  {what:<30} {event.actor:<8} {event.note}".rstrip())
    ledger.engine.dispose()


async def run_job(settings: Settings, browse_later: Settings) -> None:
    """The part a backend service would do: start, follow, approve, read the result."""
    client = await LanewayClient.connect(settings)
    outbox = settings.outbox_path / "briefs"
    job_id = await client.start_background_job(research_brief())
    say(f"\nJob {job_id}")
    say(f"  research_brief in workspace {WORKSPACE}, requested by {REQUESTER}, review required")
    say(f"  Web UI: {workflow_url(settings, job_id)}")
    progress = Progress()
    await follow_until_review(client, job_id, progress)
    outcome = await review_and_finish(client, job_id, progress)
    print_delivery(outbox / f"{job_id}.json", outcome)
    print_audit_trail(settings, job_id)
    try:
        await run_batch_demo(
            client, WORKSPACE, REQUESTER, say, lambda batch_id: workflow_url(settings, batch_id)
        )
    except (RuntimeError, TimeoutError) as error:
        raise DemoFailed(str(error)) from None
    say(f"\nWeb UI: {workflow_url(settings, job_id)}")
    say(
        f"  (the demo's stack stops now; to browse the job later run "
        f"`LANEWAY_DATA_DIR={settings.data_dir} make dev`\n"
        f"   and open {workflow_url(browse_later, job_id)})"
    )


@contextmanager
def sigterm_stops_the_demo() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the stack is stopped on the way out."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_demo(base: Settings) -> int:
    """Run the demo; 0 when the job was approved and delivered."""
    settings = demo_settings(base)
    lock = settings.data_dir / "dev.lock"
    stack = DevStack(settings)
    say(
        "Laneway demo: a research brief reviewed and delivered, then 2,000 tickets through "
        "the Batch API, on a throwaway stack"
    )
    try:
        # The lock keeps a second demo (or a `laneway dev` on this directory) off its SQLite.
        with sigterm_stops_the_demo(), single_instance(lock):
            say(f"Starting the stack (data and logs in {settings.data_dir}) ...")
            stack.start(say)
            asyncio.run(run_job(settings, browse_later=base))
            return 0
    except AlreadyRunningError:
        holder = lock.read_text().strip() or "unknown"
        return fail(
            f"another Laneway stack (pid {holder}) is using {settings.data_dir}; "
            f"let it finish, or stop it with `kill {holder}`"
        )
    except (DevStackError, DemoFailed, LanewayClientError) as error:
        return fail(f"{error}; logs in {stack.log_dir}")
    except KeyboardInterrupt:
        return fail("interrupted", code=130)
    finally:
        stop(stack)


def stop(stack: DevStack) -> None:
    if stack.children:
        say("Stopping the stack ...")
        stack.stop()
        say("Stack stopped.")


def fail(message: str, code: int = 1) -> int:
    print(f"laneway demo: {message}", file=sys.stderr, flush=True)
    return code
