"""`laneway jobs|submit|results|approve|reject|cancel|retry|escalate|archive`: operators' commands.

Every command is a thin layer over `client.jobs.LanewayClient`: it parses flags, calls the
client once or a few times, and prints a table for people or JSON for scripts (`--json`).
Read commands talk to Temporal directly, as the Web UI does, and need no token; actions and
submits act as the actor an API token names (the same tokens the HTTP API accepts).

`client.jobs` pulls in Temporal and the ledger (seconds to import), so it is imported only
when a job command runs: `laneway dev` and `--help` stay quick.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from pydantic import BaseModel, ValidationError

from client.cli_format import fields, money, table, when
from laneway.background import Actor, BackgroundJobInput
from laneway.batch import (
    BATCH_ENDPOINTS,
    BadLinePolicy,
    BatchJobInput,
    BatchJobSpec,
    BatchProgress,
    InputFormat,
)
from laneway.jobs import INLINE_TEXT_MAX_CHARS, ArtifactRef, JobSpec, ReviewPolicy, check_job_id
from laneway.problems import problem_location, problem_message
from laneway.settings import Settings
from laneway.status import Action, Lane, ProductStatus, is_terminal

if TYPE_CHECKING:
    from client.jobs import JobSummary, LanewayClient
    from laneway.lifecycle import JobState
    from store.ledger import JobEvent

    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]

Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]
T = TypeVar("T")
N = TypeVar("N", int, float)

# Inline input travels through workflow history, where a payload over 256 KB is a bug.
HOW_TO_AUTHENTICATE: Final = (
    "set LANEWAY_TOKEN (or pass --token) to one of the API tokens configured in "
    "LANEWAY_API_TOKENS / LANEWAY_API_TOKENS_FILE"
)
NO_TOKEN_NEEDED: Final = "Needs no token: reads Temporal directly, as the Web UI does."
LIST_HEADERS: Final = ("JOB ID", "LANE", "STATUS", "TYPE", "WORKSPACE", "PROGRESS", "STARTED")
TIMELINE_HEADERS: Final = ("TIME", "KIND", "STATUS", "ACTOR", "NOTE")
# Spec fields named as the flags that set them, so an error points at what to change.
FLAG_OF_FIELD: Final = {
    "job_type": "--job-type",
    "job_id": "--job-id",
    "review_policy": "--review",
    "input.model": "--model",
    "input.text": "--text/--input-file",
    "input.instructions": "--instructions",
    "input.max_output_tokens": "--max-output-tokens",
    "input_format": "--format",
    "endpoint": "--endpoint",
    "bad_lines": "--bad-lines",
    "template.model": "--model",
    "template.endpoint": "--endpoint",
    "template.prompt_template": "--prompt-template",
    "template.input_field": "--input-field",
    "template.id_field": "--id-field",
    "note": "--note/--reason",
}
# Checks a batch spec from flags before its input is stored; replaced by the real reference.
_UNSTORED_INPUT: Final = ArtifactRef(uri="artifact://unstored", sha256="0" * 64, size_bytes=0)


class CliError(Exception):
    """A problem to print as `laneway: <message>` and exit with `code` (2: fix the command)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# ---- the parser --------------------------------------------------------------------------


def add_job_commands(commands: Subcommands) -> None:
    """Add the job commands to `laneway`'s subcommands; each sets `handler` to run it."""
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON for scripts")
    token = argparse.ArgumentParser(add_help=False)
    token.add_argument(
        "--token",
        help=(
            "API token naming who acts (default: $LANEWAY_TOKEN): one of those in "
            "LANEWAY_API_TOKENS / LANEWAY_API_TOKENS_FILE"
        ),
    )
    _add_jobs(commands, as_json)
    _add_actions(commands, as_json, token)
    _add_submit(commands, as_json, token)
    results = commands.add_parser(
        "results",
        help="write a job's output (background) or results JSONL (batch)",
        description="Write a job's output or results file. " + NO_TOKEN_NEEDED,
    )
    results.add_argument("job_id", metavar="ID")
    results.add_argument(
        "--errors", action="store_true", help="the errors file instead: what went wrong, JSONL"
    )
    results.add_argument("--output", type=Path, metavar="PATH", help="write here, not stdout")
    results.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # no effect
    results.set_defaults(handler=_results)


def _add_jobs(commands: Subcommands, as_json: argparse.ArgumentParser) -> None:
    jobs = commands.add_parser(
        "jobs", help="list, show and watch jobs", description="Find jobs. " + NO_TOKEN_NEEDED
    )
    views = jobs.add_subparsers(dest="view", required=True, metavar="VIEW")
    listing = views.add_parser(
        "list", parents=[as_json], help="jobs newest first", description=NO_TOKEN_NEEDED
    )
    listing.add_argument("--status", choices=[status.value for status in ProductStatus])
    listing.add_argument("--workspace")
    listing.add_argument("--lane", choices=[Lane.BACKGROUND.value, Lane.BATCH.value])
    listing.add_argument("--job-type", metavar="T")
    listing.add_argument("--limit", type=_positive(int), default=100, metavar="N")
    listing.set_defaults(handler=_list)
    show = views.add_parser(
        "show",
        parents=[as_json],
        help="a job's status, cost, allowed actions and audit trail",
        description=NO_TOKEN_NEEDED,
    )
    show.add_argument("job_id", metavar="ID")
    show.set_defaults(handler=_show)
    watch = views.add_parser(
        "watch",
        parents=[as_json],
        help="follow a job until it ends; exit 0 if it completed, 1 otherwise",
        description=NO_TOKEN_NEEDED,
    )
    watch.add_argument("job_id", metavar="ID")
    watch.add_argument(
        "--interval", type=_positive(float), default=1.0, metavar="SECONDS", help="default 1"
    )
    watch.set_defaults(handler=_watch)


def _add_actions(
    commands: Subcommands, as_json: argparse.ArgumentParser, token: argparse.ArgumentParser
) -> None:
    helps = {
        Action.APPROVE: "approve a job (or batch plan) in review; you must not be its requester",
        Action.REJECT: "reject a job in review; it ends canceled",
        Action.CANCEL: "stop a job; the provider's work is cancelled too",
        Action.RETRY: "give a failed or expired job another try",
        Action.ESCALATE: "flag a job in review for attention",
        Action.ARCHIVE: "close a failed job nobody will retry",
    }
    for action, text in helps.items():
        command = commands.add_parser(action.value, parents=[as_json, token], help=text)
        command.add_argument("job_id", metavar="ID")
        # Decisions that end or stop a job must say why: the note goes into the audit trail.
        required = action in (Action.APPROVE, Action.REJECT, Action.CANCEL)
        flag = "--reason" if action is Action.CANCEL else "--note"
        command.add_argument(
            flag, dest="note", required=required, default="", metavar="TEXT", help="for the audit"
        )
        command.set_defaults(handler=_act, action=action)


def _add_submit(
    commands: Subcommands, as_json: argparse.ArgumentParser, token: argparse.ArgumentParser
) -> None:
    submit = commands.add_parser(
        "submit",
        help="start a background or batch job",
        description="Start a job in the token's workspace, requested by the token's actor.",
    )
    lanes = submit.add_subparsers(dest="lane", required=True, metavar="LANE")
    common = argparse.ArgumentParser(add_help=False, parents=[as_json, token])
    common.add_argument(
        "--job-type", required=True, metavar="T", help="a slug such as research_brief"
    )
    common.add_argument("--job-id", metavar="ID", help="your own id: submitting it again is safe")
    background = lanes.add_parser(
        "background", parents=[common], help="one long model call (Responses, background mode)"
    )
    background.add_argument("--model", required=True, metavar="M")
    source = background.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="the input")
    source.add_argument("--input-file", type=Path, metavar="PATH", help="the input, UTF-8 text")
    background.add_argument("--instructions", metavar="TEXT")
    background.add_argument("--review", choices=[policy.value for policy in ReviewPolicy])
    background.add_argument("--max-output-tokens", type=int, metavar="N")
    background.set_defaults(handler=_submit_background)

    batch = lanes.add_parser(
        "batch", parents=[common], help="many records or requests (Files + Batch API)"
    )
    batch.add_argument("file", type=Path, metavar="FILE", help="JSONL input, one item a line")
    batch.add_argument("--format", choices=[kind.value for kind in InputFormat], default="requests")
    batch.add_argument("--model", metavar="M", help="records: the model to call")
    batch.add_argument(
        "--endpoint",
        choices=BATCH_ENDPOINTS,
        help="records: the endpoint to call (default /v1/responses); requests: the one allowed",
    )
    prompt = batch.add_mutually_exclusive_group()
    prompt.add_argument("--prompt-template", metavar="TEXT", help="records: e.g. 'Sort: {title}'")
    prompt.add_argument("--input-field", metavar="NAME", help="records: the field that is input")
    batch.add_argument("--id-field", metavar="NAME", help="records: field used as custom_id")
    batch.add_argument("--bad-lines", choices=[policy.value for policy in BadLinePolicy])
    batch.add_argument("--review", choices=[ReviewPolicy.AUTO.value, ReviewPolicy.REQUIRED.value])
    batch.set_defaults(handler=_submit_batch)


def _positive(kind: Callable[[str], N]) -> Callable[[str], N]:
    def parse(text: str) -> N:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a number above 0, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


# ---- running a command -------------------------------------------------------------------


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the job command `args` names; errors become one plain line and an exit code."""
    from temporalio.service import RPCError, RPCStatusCode

    from client.jobs import LanewayClientError

    handler: Handler = args.handler
    try:
        _check_id(args)
        return asyncio.run(handler(args, settings))
    except CliError as error:
        return _fail(str(error), getattr(error, "code", 2))
    except LanewayClientError as error:
        return _fail(str(error), 1)
    except ValidationError as error:  # a request the client builds from the flags, e.g. a note
        return _fail(f"invalid request: {_problems(error)}", 2)
    except RPCError as error:
        if error.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            return _fail(_unreachable(settings), 1)
        return _fail(f"Temporal refused the call: {error.message}", 1)
    except KeyboardInterrupt:
        return 130


def _check_id(args: argparse.Namespace) -> None:
    """A job id (ID or --job-id) that no surface could reach is refused before any call."""
    job_id = getattr(args, "job_id", None)
    if job_id is not None:
        try:
            check_job_id(job_id)
        except ValueError as error:
            raise CliError(str(error), 2) from None


def _fail(message: str, code: int) -> int:
    print(f"laneway: {message}", file=sys.stderr)
    return code


def _unreachable(settings: Settings) -> str:
    return (
        f"cannot reach Temporal at {settings.temporal_address}: start it (`laneway dev`) "
        "or set LANEWAY_TEMPORAL_ADDRESS"
    )


@asynccontextmanager
async def _connected(settings: Settings) -> AsyncIterator[LanewayClient]:
    from client.jobs import LanewayClient

    client = await LanewayClient.connect(settings)  # unreachable: TemporalUnreachable
    try:
        yield client
    finally:
        client.close()


def _actor(args: argparse.Namespace, settings: Settings) -> Actor:
    """Who acts: the identity the API token names, exactly as the HTTP API would see it."""
    token = args.token or os.environ.get("LANEWAY_TOKEN")
    if not token:
        raise CliError(f"this command acts as someone: {HOW_TO_AUTHENTICATE}", 2)
    identity = settings.tokens().get(token)
    if identity is None:
        raise CliError(f"the token is not a configured API token: {HOW_TO_AUTHENTICATE}", 2)
    return identity.as_actor()


def _checked(build: Callable[[], T]) -> T:
    """`build()`, with a validation error turned into one line naming flags (exit 2)."""
    try:
        return build()
    except ValidationError as error:
        raise CliError(f"invalid job: {_problems(error)}", 2) from None


def _problems(error: ValidationError) -> str:
    problems = []
    for problem in error.errors():
        message = problem_message(problem)
        field = ".".join(str(part) for part in problem_location(problem["loc"]))
        if field in FLAG_OF_FIELD:
            field = f"{field} ({FLAG_OF_FIELD[field]})"
        if field.startswith("job_type"):
            message += "; use a slug such as research_brief: lowercase letters, digits, _ and -"
        problems.append(f"{field}: {message}" if field else message)
    return "; ".join(problems)


def _print_json(data: Any, *, indent: int | None = 2) -> None:
    print(json.dumps(data, indent=indent), flush=True)


def _dump(model: BaseModel) -> Any:
    return model.model_dump(mode="json")


# ---- jobs list / show / watch ------------------------------------------------------------


async def _list(args: argparse.Namespace, settings: Settings) -> int:
    async with _connected(settings) as client:
        jobs = await client.list_jobs(
            status=args.status,
            lane=args.lane,
            workspace=args.workspace,
            job_type=args.job_type,
            limit=args.limit,
        )
    if args.json:
        _print_json([_dump(job) for job in jobs])
    elif not jobs:
        print("no jobs match")
    else:
        print(table(LIST_HEADERS, [_list_row(job) for job in jobs]))
    return 0


def _list_row(job: JobSummary) -> tuple[object, ...]:
    return (
        *(job.job_id, job.lane, job.status, job.job_type, job.workspace),
        *(job.progress, job.started_at),
    )


async def _show(args: argparse.Namespace, settings: Settings) -> int:
    async with _connected(settings) as client:
        details = await client.details(args.job_id)
    if args.json:
        _print_json(_dump(details))
        return 0
    state, timeline = details.job, details.timeline
    shown = _state_fields(state)
    if details.side_effect is not None:
        effect = details.side_effect
        shown.append(("side effect", f"{effect.kind} to {effect.destination or '(unknown)'}"))
    print(fields(shown))
    print()
    if timeline:
        print(table(TIMELINE_HEADERS, [_timeline_row(event) for event in timeline]))
    else:
        print("timeline: no entries yet")
    return 0


def _state_fields(state: JobState) -> list[tuple[str, object]]:
    shown: list[tuple[str, object]] = [
        ("job", state.job_id),
        ("status", state.status.value),
        ("reason", state.reason),
        ("lane", state.lane),
        ("type", state.job_type),
        ("workspace", state.workspace),
        ("requested by", state.requested_by),
        ("created", state.created_at),
        ("updated", state.updated_at),
        ("cost", state.cost_usd),
    ]
    if isinstance(state, BatchProgress):
        shown += _batch_fields(state)
    else:
        shown += [("attempts", state.attempts), ("escalated", "yes" if state.escalated else "no")]
    shown += [
        ("provider ids", ", ".join(state.provider_ids)),
        ("actions", ", ".join(state.allowed_actions) or "none"),
    ]
    return shown


def _batch_fields(state: BatchProgress) -> list[tuple[str, object]]:
    counts = state.records
    records = (
        f"{counts.total} total, {counts.succeeded} succeeded, {counts.failed} failed "
        f"({counts.retryable} retryable), {counts.pending} pending"
    )
    estimate = state.estimate
    estimated = None
    if estimate is not None:
        estimated = (
            f"{money(estimate.cost_batch_usd)} at batch price "
            f"({money(estimate.cost_standard_usd)} standard), "
            f"{estimate.input_tokens} input + {estimate.output_tokens} output tokens"
        )
    return [
        ("records", records),
        ("quarantined", state.quarantined),
        ("round", state.round),
        ("in flight", f"{state.shards_in_flight} provider batches"),
        ("estimate", estimated),
    ]


def _timeline_row(event: JobEvent) -> tuple[object, ...]:
    moved = None  # an action without a status change
    if event.to_status is not None:
        moved = f"{event.from_status or ''} -> {event.to_status}".lstrip()
    return (event.at, event.kind, moved, event.actor, event.note)


async def _watch(args: argparse.Namespace, settings: Settings) -> int:
    async with _connected(settings) as client:
        seen: tuple[object, ...] = ()
        while True:
            state = await client.status(args.job_id)
            now = (state.status, _progress(state), state.reason)
            if now != seen:
                _print_change(state, as_json=args.json)
                seen = now
            if is_terminal(state.status):
                return 0 if state.status is ProductStatus.COMPLETED else 1
            await asyncio.sleep(args.interval)


def _print_change(state: JobState, *, as_json: bool) -> None:
    if as_json:
        _print_json(_dump(state), indent=None)  # one JSON object a line
        return
    parts = [when(state.updated_at), state.status.value, _progress(state), state.reason or ""]
    print("  ".join(part for part in parts if part), flush=True)


def _progress(state: JobState) -> str:
    if isinstance(state, BatchProgress):
        counts = state.records
        return (
            f"{counts.succeeded}/{counts.total} succeeded, {counts.failed} failed, "
            f"{counts.pending} pending, round {state.round}"
        )
    return f"attempt {state.attempts}"


# ---- control actions ---------------------------------------------------------------------


async def _act(args: argparse.Namespace, settings: Settings) -> int:
    actor = _actor(args, settings)
    async with _connected(settings) as client:
        state = await client.act(args.job_id, args.action, actor, args.note)
    if args.json:
        _print_json(_dump(state))
        return 0
    line = f"{state.job_id}: {state.status.value}"
    if state.reason:
        line += f" ({state.reason})"
    if state.allowed_actions:
        line += f"; next: {', '.join(state.allowed_actions)}"
    print(line)
    return 0


# ---- submitting --------------------------------------------------------------------------


async def _submit_background(args: argparse.Namespace, settings: Settings) -> int:
    actor = _actor(args, settings)
    _checked(lambda: _background_spec(args, actor))  # bad flags fail before any connection
    async with _connected(settings) as client:

        def store(text: str) -> ArtifactRef:
            stored = client.job_input(model=args.model, text=text).artifact
            assert stored is not None
            return stored

        spec = _checked(lambda: _background_spec(args, actor, store))
        job_id = await client.start_background_job(spec, job_id=args.job_id)
    return _print_submitted(args, job_id, Lane.BACKGROUND)


# Stands in for a large input while the flags are checked, before anything is stored.
_NOT_YET_STORED = ArtifactRef(uri="artifact://not-yet-stored", sha256="0" * 64, size_bytes=0)


def _background_spec(
    args: argparse.Namespace, actor: Actor, store: Callable[[str], ArtifactRef] | None = None
) -> JobSpec:
    """The job as asked; input text over INLINE_TEXT_MAX_CHARS goes in as an artifact
    (`store` stores it; without it, only the flags are checked)."""
    text = args.text if args.input_file is None else _read_input(args.input_file)
    job_input: dict[str, Any] = {
        "model": args.model,
        "instructions": args.instructions,
        "max_output_tokens": args.max_output_tokens,
    }
    if text is not None and len(text) > INLINE_TEXT_MAX_CHARS:
        job_input["artifact"] = _NOT_YET_STORED if store is None else store(text)
    else:
        job_input["text"] = text
    spec = JobSpec.model_validate(
        _given(
            job_type=args.job_type,
            workspace=actor.workspace,
            requested_by=actor.id,
            input=_given(**job_input),
            review_policy=args.review,
        )
    )
    # The checks a worker would make, so a bad job id fails now rather than at start.
    BackgroundJobInput(job_id="check" if args.job_id is None else args.job_id, spec=spec)
    return spec


def _read_input(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"cannot read --input-file {path}: {error}", 2) from None


async def _submit_batch(args: argparse.Namespace, settings: Settings) -> int:
    actor = _actor(args, settings)
    spec_fields = _batch_spec_fields(args, actor)
    _checked(lambda: _check_batch(spec_fields, args.job_id))
    if not args.file.is_file():
        raise CliError(f"no input file {args.file}", 2)
    async with _connected(settings) as client:
        try:
            stored = await asyncio.to_thread(client.store_batch_input, args.file)
        except OSError as error:
            raise CliError(f"cannot read {args.file}: {error.strerror or error}", 2) from None
        spec = BatchJobSpec.model_validate({**spec_fields, "input": stored})
        job_id = await client.start_batch_job(spec, job_id=args.job_id)
    return _print_submitted(args, job_id, Lane.BATCH)


def _check_batch(spec_fields: dict[str, Any], job_id: str | None) -> None:
    """The checks a worker would make, before the input is stored or anything started."""
    spec = BatchJobSpec.model_validate({**spec_fields, "input": _UNSTORED_INPUT})
    BatchJobInput(job_id="check" if job_id is None else job_id, spec=spec)


def _batch_spec_fields(args: argparse.Namespace, actor: Actor) -> dict[str, Any]:
    template_flags = {
        "--model": args.model,
        "--prompt-template": args.prompt_template,
        "--input-field": args.input_field,
        "--id-field": args.id_field,
    }
    spec = _given(
        job_type=args.job_type,
        workspace=actor.workspace,
        requested_by=actor.id,
        input_format=args.format,
        bad_lines=args.bad_lines,
        review_policy=args.review,
    )
    if args.format == InputFormat.REQUESTS:
        given = [flag for flag, value in template_flags.items() if value is not None]
        if given:
            raise CliError(
                f"{', '.join(given)} only apply to --format records: request lines carry "
                "their own model and body",
                2,
            )
        return _given(**spec, endpoint=args.endpoint)
    template = _given(
        endpoint=args.endpoint or "/v1/responses",
        model=args.model,
        prompt_template=args.prompt_template,
        input_field=args.input_field,
        id_field=args.id_field,
    )
    return {**spec, "template": template}


def _given(**values: Any) -> dict[str, Any]:
    """The values set: an unset flag leaves the spec's own default in place."""
    return {name: value for name, value in values.items() if value is not None}


def _print_submitted(args: argparse.Namespace, job_id: str, lane: Lane) -> int:
    if args.json:
        _print_json({"job_id": job_id, "lane": lane.value})
    else:
        print(job_id)
    return 0


# ---- results -----------------------------------------------------------------------------


async def _results(args: argparse.Namespace, settings: Settings) -> int:
    """Write what the job left; a job that did not succeed says why on stderr and exits 1
    (with no output at all, the client's `ResultNotReady` says it the same way)."""
    async with _connected(settings) as client:
        found = await client.results(args.job_id, errors=args.errors)
        # Chunks are read lazily from the store (and verified at the end): blocking reads.
        written = await asyncio.to_thread(_write, found.chunks, args.output)
    if args.output is not None:
        print(f"wrote {written:,} bytes to {args.output}", flush=True)
    if found.failure is not None:
        what = "output" if found.media_type.startswith("text/") else "results"
        return _fail(f"{found.failure}; this is the {what} it left", 1)
    return 0


def _write(chunks: Iterator[bytes], output: Path | None) -> int:
    """Write every chunk; a file appears only once all of it was read and verified."""
    if output is None:
        sys.stdout.flush()
        written = sum(sys.stdout.buffer.write(chunk) for chunk in chunks)
        sys.stdout.buffer.flush()
        return written
    partial = output.with_name(output.name + ".part")
    try:
        with partial.open("wb") as out:
            written = sum(out.write(chunk) for chunk in chunks)
        partial.replace(output)
    except OSError as error:
        raise CliError(f"cannot write {output}: {error.strerror or error}") from None
    finally:
        partial.unlink(missing_ok=True)
    return written
