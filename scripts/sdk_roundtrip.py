"""Check an OpenAI-compatible provider end to end with nothing but the `openai` SDK.

    OPENAI_BASE_URL=http://127.0.0.1:8081/v1 OPENAI_API_KEY=any python scripts/sdk_roundtrip.py

Runs a 1,000-line chat batch (upload, create, poll, download output and error files, join on
custom_id: every request answered exactly once, each answer about its own request) and a
background response (create, poll until done) plus a second one cancelled while in flight.
Works against OpenAI itself too (small prompts at batch price; pass --no-check-content, as a
real model need not echo its ticket number). Exits 0 when everything checks out, 1 otherwise.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import openai
from openai.types import Batch
from openai.types.responses import Response

TERMINAL_BATCH = {"completed", "failed", "expired", "cancelled"}
TERMINAL_RESPONSE = {"completed", "failed", "cancelled", "incomplete"}
CANCEL_METADATA = {"roundtrip": "cancel"}  # marks the response the script cancels


def ticket(number: int) -> str:
    """Zero-padded, so no ticket's marker is a prefix of another's (T00001 vs T00012)."""
    return f"T{number:05d}"


def batch_input(lines: int, model: str) -> tuple[bytes, dict[str, str]]:
    """JSONL request lines, and for each custom_id the marker its answer should mention."""
    requests, markers = [], {}
    for number in range(lines):
        custom_id, marker = f"req-{number:05d}", ticket(number)
        markers[custom_id] = marker
        body = {
            "model": model,
            "max_tokens": 40,
            "messages": [{"role": "user", "content": f"Summarise ticket {marker}: it works"}],
        }
        line = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions"}
        requests.append(json.dumps({**line, "body": body}))
    return ("\n".join(requests) + "\n").encode(), markers


def wait_for_batch(client: openai.OpenAI, batch_id: str, poll: float, limit: float) -> Batch:
    deadline = time.monotonic() + limit
    batch = client.batches.retrieve(batch_id)
    while batch.status not in TERMINAL_BATCH and time.monotonic() < deadline:
        time.sleep(poll)
        batch = client.batches.retrieve(batch_id)
    return batch


def read_lines(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if not file_id:
        return []
    text = client.files.content(file_id).text
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def check_line(line: dict[str, Any], markers: dict[str, str], check_content: bool) -> str | None:
    """What is wrong with one result line, if anything."""
    custom_id = line.get("custom_id")
    if custom_id not in markers:
        return f"an answer for a request never sent: {custom_id!r}"
    response = line.get("response") or {}
    if response.get("status_code") != 200:
        return f"{custom_id} failed: {line.get('error') or response}"
    content = response["body"]["choices"][0]["message"]["content"] or ""
    if check_content and markers[custom_id] not in content:
        return f"{custom_id}: the answer is not about ticket {markers[custom_id]}"
    return None


def check_join(markers: dict[str, str], lines: list[dict[str, Any]]) -> list[str]:
    """Every custom_id back exactly once."""
    answered: dict[str, int] = {}
    for line in lines:
        answered[line.get("custom_id", "")] = answered.get(line.get("custom_id", ""), 0) + 1
    missing = sorted(set(markers) - set(answered))
    twice = sorted(custom_id for custom_id, count in answered.items() if count > 1)
    problems = [f"{len(missing)} requests never answered, e.g. {missing[:3]}"] if missing else []
    return problems + ([f"answered more than once: {twice[:3]}"] if twice else [])


def check_batch(client: openai.OpenAI, args: argparse.Namespace) -> list[str]:
    started = time.monotonic()
    data, markers = batch_input(args.lines, args.model)
    upload = client.files.create(file=("roundtrip.jsonl", io.BytesIO(data)), purpose="batch")
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    batch = wait_for_batch(client, batch.id, args.poll_interval, args.timeout)
    if batch.status != "completed":
        return [f"batch {batch.id} ended {batch.status}, expected completed"]
    lines = read_lines(client, batch.output_file_id) + read_lines(client, batch.error_file_id)
    problems = [p for line in lines if (p := check_line(line, markers, args.check_content))]
    problems += check_join(markers, lines)
    counts = batch.request_counts
    if counts is None or counts.total != len(markers):
        problems.append(f"request_counts {counts} do not match {len(markers)} requests")
    answered = len({line.get("custom_id") for line in lines} & set(markers))
    print(
        f"batch {batch.id}: {batch.status}, {answered}/{len(markers)} answered, "
        f"{len(problems)} problems, {time.monotonic() - started:.1f}s"
    )
    return problems


def poll_response(client: openai.OpenAI, response: Response, args: argparse.Namespace) -> Response:
    deadline = time.monotonic() + args.timeout
    while response.status not in TERMINAL_RESPONSE and time.monotonic() < deadline:
        time.sleep(args.poll_interval)
        response = client.responses.retrieve(response.id)
    return response


def check_background(client: openai.OpenAI, args: argparse.Namespace) -> list[str]:
    problems = []
    created = client.responses.create(
        model=args.model, input="Write one line about durable workflows.", background=True
    )
    done = poll_response(client, created, args)
    if done.status != "completed" or not done.output_text:
        problems.append(f"background response {done.id} ended {done.status}")
    to_cancel = client.responses.create(
        model=args.model,
        input="Write a long essay about queues.",
        background=True,
        metadata=CANCEL_METADATA,
    )
    cancelled = client.responses.cancel(to_cancel.id)
    # A fast provider may finish first; then the cancel returns the completed response.
    if cancelled.status not in ("cancelled", "completed"):
        problems.append(f"cancel left {to_cancel.id} {cancelled.status}")
    again = client.responses.retrieve(to_cancel.id)
    if again.status != cancelled.status:
        problems.append(f"{to_cancel.id} was {cancelled.status}, then {again.status}")
    print(f"background {done.id}: {done.status}; cancelled {to_cancel.id}: {cancelled.status}")
    return problems


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--poll-interval", type=float, default=5.0, help="seconds")
    parser.add_argument("--timeout", type=float, default=24 * 3600.0, help="seconds per wait")
    parser.add_argument(
        "--no-check-content",
        dest="check_content",
        action="store_false",
        help="skip checking that each answer mentions its ticket (real models may not)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    client = openai.OpenAI()  # OPENAI_BASE_URL / OPENAI_API_KEY, the SDK's default retries
    problems = check_batch(client, args) + check_background(client, args)
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    print("roundtrip ok" if not problems else f"roundtrip failed: {len(problems)} problems")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
