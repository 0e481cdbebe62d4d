"""Refusals and errors from `laneway` are sentences for people: no class names, no tracebacks."""

from __future__ import annotations

import json
import re
import traceback
import uuid
from pathlib import Path

import pytest

from client.jobs import LanewayClient
from emulator.server import EmulatorServer
from laneway.background import Actor
from tests.batch.conftest import records, write_jsonl
from tests.cli.conftest import ALICE, ALICE_AS_REVIEWER, RITA, UNREACHABLE, Cli, Ran
from tests.cli.test_jobs_cli import SUBMIT_BRIEF, submit_brief
from tests.client.conftest import research_brief, wait_for_status
from tests.plain_messages import internal_names


async def _refused(cli: Cli, *argv: str) -> str:
    """What `laneway <argv>` tells a person when it fails (a traceback if one escaped)."""
    try:
        ran = await cli(*argv)
    except Exception:  # escaped `main`: a person would see this traceback
        ran = Ran(-1, "", traceback.format_exc())
    assert ran.code != 0, (argv, ran)
    return ran.err


@pytest.mark.usefixtures("worker")
async def test_refusals_and_errors_name_no_class(
    cli: Cli,
    laneway: LanewayClient,
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    in_review = await submit_brief(cli)
    failed = f"job-{uuid.uuid4().hex}"
    emulator.control.add_fault(
        {
            "kind": "response_fail",
            "match": {"metadata_key": "laneway_job_id", "metadata_value": failed},
            "message": "GPU fell over",
        }
    )
    await laneway.start_background_job(research_brief(), job_id=failed)
    await wait_for_status(laneway, in_review, "needs_review")
    await wait_for_status(laneway, failed, "failed")
    ended = await submit_brief(cli)
    assert (await cli("cancel", ended, "--reason", "not needed", "--token", ALICE)).code == 0
    tickets = write_jsonl(tmp_path / "tickets.jsonl", records(2))

    said = [
        await _refused(cli, "jobs", "show", "job-missing"),
        await _refused(cli, "results", "job-missing"),
        await _refused(cli, "approve", in_review, "--note", "ok", "--token", ALICE),
        await _refused(cli, "approve", in_review, "--note", "ok", "--token", ALICE_AS_REVIEWER),
        await _refused(cli, "approve", in_review, "--note", "x" * 2001, "--token", RITA),
        await _refused(cli, "retry", in_review, "--token", RITA),
        await _refused(cli, "escalate", failed, "--token", RITA),
        await _refused(cli, "cancel", ended, "--reason", "again", "--token", ALICE),
        await _refused(cli, "results", failed),
        await _refused(cli, "results", in_review, "--output", str(tmp_path / "no" / "such.txt")),
        await _refused(cli, "jobs", "list", "--workspace", 'ac"me'),
        await _refused(cli, *SUBMIT_BRIEF[:3], "Bad Type", *SUBMIT_BRIEF[4:], "--token", ALICE),
        await _refused(
            cli,
            *("submit", "batch", str(tickets), "--job-type", "triage", "--format", "records"),
            *("--input-field", "title", "--token", ALICE),
        ),
        await _refused(cli, *SUBMIT_BRIEF, "--token", "tok-nobody"),
    ]
    tokens_file = tmp_path / "tokens.json"
    tokens_file.write_text(json.dumps({"tok-x": {"actor": "", "workspace": "acme"}}))
    monkeypatch.setenv("LANEWAY_API_TOKENS_FILE", str(tokens_file))
    said.append(await _refused(cli, "archive", failed, "--token", "tok-x"))
    monkeypatch.delenv("LANEWAY_API_TOKENS_FILE")
    monkeypatch.setenv("LANEWAY_API_TOKENS", json.dumps({"tok-x": "rita"}))
    said.append(await _refused(cli, "jobs", "list"))
    monkeypatch.setenv("LANEWAY_API_TOKENS", "{}")
    monkeypatch.setenv("LANEWAY_TEMPORAL_ADDRESS", UNREACHABLE)
    said.append(await _refused(cli, "jobs", "show", in_review))

    assert [(message, internal_names(message)) for message in said if internal_names(message)] == []
    # Settings errors name the command they stopped: `laneway jobs: LANEWAY_API_TOKENS: ...`.
    not_one_line = [m for m in said if not re.match(r"laneway( \w+)?: ", m) or m.count("\n") != 1]
    assert not_one_line == []
    await laneway.archive(failed, Actor(id="rita", workspace="acme", roles={"reviewer"}))
