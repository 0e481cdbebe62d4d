"""The HTTP API and the `laneway` CLI together, against `laneway dev` as a user runs it.

Backends submit over HTTP, operators look and act from the CLI, and the emulator's signed
webhooks reach the stack's API (jobs the API starts poll only every five minutes). Refusals
(no token, another workspace's token, a self-approval) get 401/403 and change nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.batch.conftest import classify_template, records, write_jsonl
from tests.e2e.stack import DevStackProcess, free_port

WORKSPACE = "dev"
TOKENS = {
    "tok-alice": {"actor": "alice", "workspace": WORKSPACE, "roles": ["reviewer"]},
    "tok-rita": {"actor": "rita", "workspace": WORKSPACE, "roles": ["reviewer"]},
    "tok-olga": {"actor": "olga", "workspace": WORKSPACE, "roles": ["operator"]},
    "tok-gina": {"actor": "gina", "workspace": "globex", "roles": ["reviewer", "operator"]},
}
BRIEF = "Brief on churn: customers love the great support team."


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`laneway dev` on free ports and a throwaway data directory; the same settings serve
    the CLI, which reads the stack's ledger and artifact store for results."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("LANEWAY_", "OPENAI_"))}
    yield {
        **inherited,
        "LANEWAY_DATA_DIR": str(tmp_path / "var"),
        "LANEWAY_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "LANEWAY_TEMPORAL_UI_PORT": str(free_port()),
        "LANEWAY_EMULATOR_ADDRESS": f"127.0.0.1:{free_port()}",
        "LANEWAY_API_ADDRESS": f"127.0.0.1:{free_port()}",
        "LANEWAY_TASK_QUEUE": "laneway-surfaces",
        "LANEWAY_API_TOKENS": json.dumps(TOKENS),
    }


@pytest.fixture
def stack(stack_env: dict[str, str]) -> Iterator[DevStackProcess]:
    running = DevStackProcess(stack_env)
    try:
        running.wait_until_up()
        yield running
    finally:
        assert running.stop(signal.SIGTERM) == 0, "".join(running.output)


def laneway(
    env: dict[str, str], *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The `laneway` command, as an operator runs it in a shell."""
    return subprocess.run(
        [sys.executable, "-m", "client.cli", *args],
        env={**env, **({"LANEWAY_TOKEN": token} if token else {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_for_status(api: httpx.Client, job_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        details: dict[str, Any] = api.get(f"/v1/jobs/{job_id}", headers=bearer("tok-alice")).json()
        if details["job"]["status"] == status:
            return details
        assert time.monotonic() < deadline, f"never {status}: {details}"
        time.sleep(0.2)


def test_backends_submit_over_http_and_operators_act_from_the_cli(
    stack: DevStackProcess, stack_env: dict[str, str], tmp_path: Path
) -> None:
    url = f"http://{stack_env['LANEWAY_API_ADDRESS']}"
    with httpx.Client(base_url=url, timeout=60) as api:
        submitted = api.post(
            "/v1/jobs/background",
            json={
                "job_type": "research_brief",
                "input": {"model": "gpt-4o-mini", "text": BRIEF},
                "review_policy": "required",
            },
            headers=bearer("tok-alice"),
        )
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["job_id"]
        in_review = wait_for_status(api, job_id, "needs_review")

        listed = laneway(stack_env, "jobs", "list", "--status", "needs_review", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [job["job_id"] for job in json.loads(listed.stdout)] == [job_id]
        shown = laneway(stack_env, "jobs", "show", job_id)
        assert shown.returncode == 0, shown.stderr
        for words in ("needs_review", "approve, reject, cancel, escalate", "created", "alice"):
            assert words in shown.stdout, shown.stdout

        # Refusals: each answered plainly, none leaves a trace on the job.
        assert api.post(f"/v1/jobs/{job_id}/approve").status_code == 401
        outsider = api.post(f"/v1/jobs/{job_id}/approve", headers=bearer("tok-gina"))
        assert outsider.status_code == 403
        own = api.post(f"/v1/jobs/{job_id}/approve", headers=bearer("tok-alice"))
        assert own.status_code == 403 and "cannot approve" in own.json()["detail"]
        own_cli = laneway(stack_env, "approve", job_id, "--note", "mine", token="tok-alice")
        assert own_cli.returncode == 1
        assert "alice requested this job and cannot approve it" in own_cli.stderr
        no_token = laneway(stack_env, "approve", job_id, "--note", "who?")
        assert no_token.returncode == 2 and "LANEWAY_TOKEN" in no_token.stderr
        assert wait_for_status(api, job_id, "needs_review") == in_review

        approved = laneway(stack_env, "approve", job_id, "--note", "reads well", token="tok-rita")
        assert approved.returncode == 0, approved.stderr
        assert wait_for_status(api, job_id, "completed")["job"]["reason"] == "approved"
        output = laneway(stack_env, "results", job_id)
        assert output.returncode == 0 and BRIEF in output.stdout
        assert BRIEF in api.get(f"/v1/jobs/{job_id}/results", headers=bearer("tok-rita")).text

        # An operator cancels a job a backend started from the CLI.
        started = laneway(
            stack_env,
            *("submit", "background", "--job-type", "research_brief", "--model", "gpt-4o-mini"),
            *("--text", BRIEF, "--review", "required", "--json"),
            token="tok-alice",
        )
        assert started.returncode == 0, started.stderr
        second = json.loads(started.stdout)["job_id"]
        canceled = api.post(
            f"/v1/jobs/{second}/cancel", json={"note": "duplicate"}, headers=bearer("tok-olga")
        )
        assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"

        # A batch from the CLI, watched to the end, its results over HTTP.
        tickets = write_jsonl(tmp_path / "tickets.jsonl", records(20))
        template = classify_template()
        batch = laneway(
            stack_env,
            *("submit", "batch", str(tickets), "--job-type", "ticket_triage"),
            *("--format", "records", "--model", template.model, "--id-field", "id"),
            *("--prompt-template", str(template.prompt_template), "--json"),
            token="tok-alice",
        )
        assert batch.returncode == 0, batch.stderr
        batch_id = json.loads(batch.stdout)["job_id"]
        watched = laneway(stack_env, "jobs", "watch", batch_id, "--interval", "0.5")
        assert watched.returncode == 0, watched.stdout + watched.stderr
        results = api.get(f"/v1/jobs/{batch_id}/results", headers=bearer("tok-alice"))
        assert [json.loads(line)["custom_id"] for line in results.text.splitlines()] == [
            f"rec-{n}" for n in range(20)
        ]
