"""`laneway api` says the same plain errors as JSON, with the status codes a caller acts on:
422 for an id no URL could reach, 503 while Temporal is unreachable, 504 for an action that was
sent and never answered. The API runs as its own process against a dev server the test stops."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from tests.errors.test_client_errors import own_server  # noqa: F401 (fixture)
from tests.http.conftest import ApiProcess, bearer
from tests.payload_keys import TEST_PAYLOAD_ENV

TOKENS = {
    "tok-alice": {"actor": "alice", "workspace": "acme", "roles": []},
    "tok-rita": {"actor": "rita", "workspace": "acme", "roles": ["reviewer"]},
}
BRIEF = {"job_type": "research_brief", "input": {"model": "gpt-4o-mini", "text": "hello"}}


def api_env(env: WorkflowEnvironment, data_dir: Path) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("LANEWAY_", "OPENAI_"))}
    return {
        **inherited,
        **TEST_PAYLOAD_ENV,
        "LANEWAY_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "LANEWAY_TASK_QUEUE": f"nobody-{uuid.uuid4().hex[:8]}",  # no worker: Updates wait
        "LANEWAY_DATA_DIR": str(data_dir),
        "LANEWAY_API_TOKENS": json.dumps(TOKENS),
    }


async def test_http_api_says_plain_errors_with_their_status_codes(
    own_server: WorkflowEnvironment,  # noqa: F811
    tmp_path: Path,
) -> None:
    api = ApiProcess(api_env(own_server, tmp_path), tmp_path / "api.log")
    try:
        await asyncio.to_thread(api.wait_until_up)
        async with httpx.AsyncClient(base_url=api.url, timeout=180) as http:
            alice = bearer("tok-alice")
            bad_id = await http.post(
                "/v1/jobs/background", json={**BRIEF, "job_id": "../x"}, headers=alice
            )
            assert bad_id.status_code == 422, bad_id.text
            assert "job id '../x' is not allowed" in bad_id.text
            bad_batch_id = await http.post(
                "/v1/jobs/batch",
                files={"file": ("in.jsonl", b"{}\n")},
                data={"spec": json.dumps({"job_type": "triage", "job_id": "a/b"})},
                headers=alice,
            )
            assert bad_batch_id.status_code == 422, bad_batch_id.text
            assert bad_batch_id.json()["detail"].startswith("spec.job_id: job id 'a/b'")
            spaced = await http.get("/v1/jobs/with space", headers=alice)
            assert spaced.status_code == 422, spaced.text

            started = await http.post("/v1/jobs/background", json=BRIEF, headers=alice)
            assert started.status_code == 202, started.text
            job_id = started.json()["job_id"]
            cancel = asyncio.create_task(
                http.post(f"/v1/jobs/{job_id}/cancel", json={"note": "stop"}, headers=alice)
            )
            await asyncio.sleep(3)
            assert not cancel.done()
            await own_server.shutdown()  # the cancel was sent; its answer never comes

            unanswered = await cancel
            assert unanswered.status_code == 504, unanswered.text
            detail = unanswered.json()["detail"]
            assert f"the cancel of job {job_id} was sent" in detail
            assert "no answer came" in detail

            down = await http.get("/v1/jobs", headers=alice)
            assert down.status_code == 503, down.text
            assert down.json()["detail"].startswith("cannot reach Temporal at ")
            submit_down = await http.post("/v1/jobs/background", json=BRIEF, headers=alice)
            assert submit_down.status_code == 504, submit_down.text
            assert "was sent" in submit_down.json()["detail"]
    finally:
        api.stop()
        print(api.log())
    assert "Traceback" not in api.log()
