"""Check an OpenAI-compatible provider end to end with nothing but the `openai` SDK.

    OPENAI_BASE_URL=http://127.0.0.1:8081/v1 OPENAI_API_KEY=any python scripts/sdk_roundtrip.py

Runs a 1,000-line chat batch (upload, create, poll, download output and error files, join on
custom_id: every request answered exactly once, each answer about its own request) and a
background response (create, poll until done) plus a second one cancelled while in flight.
Works against OpenAI itself too (it then costs a little: small prompts, batch price).
Exits 0 when everything checks out, 1 with the reasons otherwise.
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

TERMINAL_BATCH = {"completed", "failed", "expired", "cancelled"}
TERMINAL_RESPONSE = {"completed", "failed", "cancelled", "incomplete"}


def batch_input(lines: int, model: str) -> tuple[bytes, dict[str, str]]:
    """JSONL request lines, and for each custom_id a marker its answer should mention."""
    requests, markers = [], {}
    for number in range(lines):
        custom_id = f"req-{number:05d}"
        markers[custom_id] = f"ticket {number}"
        body = {
            "model": model,
            "max_tokens": 40,
            "messages": [{"role": "user", "content": f"Summarise ticket {number}: it works great"}],
        }
        line = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions"}
        requests.append(json.dumps({**line, "body": body}))
    return ("\n".join(requests) + "\n").encode(), markers


def wait_for_batch(client: openai.OpenAI, batch_id: str, poll: float, limit: float) -> Any:
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


def check_batch(client: openai.OpenAI, args: argparse.Namespace) -> list[str]:
    data, markers = batch_input(args.lines, args.model)
    upload = client.files.create(file=("roundtrip.jsonl", io.BytesIO(data)), purpose="batch")
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    batch = wait_for_batch(client, batch.id, args.poll_interval, args.timeout)
    if batch.status != "completed":
        return [f"batch {batch.id} ended {batch.status}, expected completed"]
    answered: dict[str, int] = {}
    problems = []
    for line in read_lines(client, batch.output_file_id) + read_lines(client, batch.error_file_id):
        custom_id = line["custom_id"]
        answered[custom_id] = answered.get(custom_id, 0) + 1
        response = line.get("response") or {}
        if response.get("status_code") != 200:
            problems.append(f"{custom_id} failed: {line.get('error') or response}")
            continue
        content = response["body"]["choices"][0]["message"]["content"] or ""
        if args.check_content and markers[custom_id] not in content:
            problems.append(f"{custom_id}: the answer is not about {markers[custom_id]!r}")
    missing = sorted(set(markers) - set(answered))
    twice = sorted(custom_id for custom_id, count in answered.items() if count > 1)
    problems += [f"{len(missing)} requests never answered, e.g. {missing[:3]}"] if missing else []
    problems += [f"answered more than once: {twice[:3]}"] if twice else []
    print(f"batch {batch.id}: {len(answered)}/{len(markers)} answered, {batch.request_counts}")
    return problems


def check_background(client: openai.OpenAI, args: argparse.Namespace) -> list[str]:
    problems = []
    response = client.responses.create(
        model=args.model, input="Write one line about durable workflows.", background=True
    )
    deadline = time.monotonic() + args.timeout
    while response.status not in TERMINAL_RESPONSE and time.monotonic() < deadline:
        time.sleep(args.poll_interval)
        response = client.responses.retrieve(response.id)
    if response.status != "completed" or not response.output_text:
        problems.append(f"background response {response.id} ended {response.status}")
    to_cancel = client.responses.create(
        model=args.model, input="Write a long essay about queues.", background=True
    )
    cancelled = client.responses.cancel(to_cancel.id)
    if cancelled.status not in ("cancelled", "completed"):
        problems.append(f"cancel left {to_cancel.id} {cancelled.status}")
    print(f"background {response.id}: {response.status}; {to_cancel.id}: {cancelled.status}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--poll-interval", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=24 * 3600.0)
    parser.add_argument(
        "--no-check-content",
        dest="check_content",
        action="store_false",
        help="skip checking that each answer mentions its ticket (real models may not)",
    )
    args = parser.parse_args(argv)
    client = openai.OpenAI()
    problems = check_batch(client, args) + check_background(client, args)
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    print("roundtrip ok" if not problems else f"roundtrip failed: {len(problems)} problems")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
