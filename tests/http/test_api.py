"""The HTTP API end to end: `laneway api` as a process, a worker, Temporal and the emulator.

Submit, list, show, approve, cancel and results over HTTP with bearer tokens; a missing token,
another workspace's token and a self-approval are refused (401/403) and change nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from tests.batch.conftest import classify_template, records, write_jsonl
from tests.conftest import WorkerFactory
from tests.http.conftest import ApiProcess, bearer

BRIEF = "Brief on churn: customers love the great support team."
BACKGROUND_JOB = {
    "job_type": "research_brief",
    "input": {"model": "gpt-4o-mini", "text": BRIEF},
    "review_policy": "required",
}


async def wait_for_status(
    api: httpx.AsyncClient, job_id: str, status: str, token: str = "tok-alice", every: float = 0.1
) -> dict[str, Any]:
    """GET the job until it shows `status`, as a backend service would; returns the details."""
    deadline = time.monotonic() + 60
    while True:
        answer = await api.get(f"/v1/jobs/{job_id}", headers=bearer(token))
        assert answer.status_code == 200, answer.text
        details: dict[str, Any] = answer.json()
        if details["job"]["status"] == status:
            return details
        assert time.monotonic() < deadline, f"never {status}: {details['job']}"
        await asyncio.sleep(every)


async def submit_brief(api: httpx.AsyncClient, **fields: Any) -> str:
    answer = await api.post(
        "/v1/jobs/background", json={**BACKGROUND_JOB, **fields}, headers=bearer("tok-alice")
    )
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["job_id"]
    return job_id


async def test_review_flow_with_refusals_that_change_nothing(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    start_api: Callable[..., ApiProcess],
    workspace: str,
    other_workspace: str,
) -> None:
    server = start_api()
    async with (
        laneway_worker(dev_server_env),
        httpx.AsyncClient(base_url=server.url, timeout=30) as api,
    ):
        job_id = await submit_brief(api)
        in_review = await wait_for_status(api, job_id, "needs_review")
        assert in_review["job"]["allowed_actions"] == ["approve", "reject", "cancel", "escalate"]
        assert in_review["job"]["requested_by"] == "alice"
        assert in_review["job"]["workspace"] == workspace
        assert [e["to_status"] for e in in_review["timeline"] if e["to_status"]][-1] == (
            "needs_review"
        )

        listed = await api.get("/v1/jobs?status=needs_review", headers=bearer("tok-rita"))
        assert [job["job_id"] for job in listed.json()] == [job_id]
        elsewhere = await api.get("/v1/jobs", headers=bearer("tok-gina"))
        assert elsewhere.status_code == 200 and elsewhere.json() == []

        refusals = [
            ({}, 401, "send an API token"),
            (bearer("tok-unknown"), 401, "unknown API token"),
            (bearer("tok-gina"), 403, f"not in workspace {other_workspace}"),
            (bearer("tok-alice"), 403, "alice requested this job and cannot approve it"),
            (bearer("tok-olga"), 403, f"olga is not a reviewer in workspace {workspace}"),
        ]
        for headers, code, words in refusals:
            answer = await api.post(
                f"/v1/jobs/{job_id}/approve", json={"note": "sneaky"}, headers=headers
            )
            assert (answer.status_code, words in answer.json()["detail"]) == (code, True), (
                headers,
                answer.text,
            )
        for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/results"):
            assert (await api.get(path)).status_code == 401
            assert (await api.get(path, headers=bearer("tok-gina"))).status_code == 403

        unchanged = await wait_for_status(api, job_id, "needs_review")
        assert unchanged["timeline"] == in_review["timeline"], "a refusal left a trace"
        assert unchanged["job"]["updated_at"] == in_review["job"]["updated_at"]

        output = await api.get(f"/v1/jobs/{job_id}/results", headers=bearer("tok-alice"))
        assert output.status_code == 200 and BRIEF in output.text
        assert output.headers["content-type"].startswith("text/plain")

        approved = await api.post(
            f"/v1/jobs/{job_id}/approve", json={"note": "reads well"}, headers=bearer("tok-rita")
        )
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "completed"
        done = await wait_for_status(api, job_id, "completed")
        approvals = [e for e in done["timeline"] if e["kind"] == "approved"]
        assert [(e["actor"], e["note"]) for e in approvals] == [("rita", "reads well")]

        again = await api.post(f"/v1/jobs/{job_id}/approve", headers=bearer("tok-rita"))
        assert again.status_code == 409 and "completed" in again.json()["detail"]


async def test_cancel_by_an_operator(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    start_api: Callable[..., ApiProcess],
) -> None:
    server = start_api()
    async with (
        laneway_worker(dev_server_env),
        httpx.AsyncClient(base_url=server.url, timeout=30) as api,
    ):
        job_id = await submit_brief(api)
        await wait_for_status(api, job_id, "needs_review")
        outsider = await api.post(f"/v1/jobs/{job_id}/cancel", headers=bearer("tok-gina"))
        assert outsider.status_code == 403
        canceled = await api.post(
            f"/v1/jobs/{job_id}/cancel", json={"note": "not needed"}, headers=bearer("tok-olga")
        )
        assert canceled.status_code == 200, canceled.text
        assert (canceled.json()["status"], canceled.json()["reason"]) == (
            "canceled",
            "cancelled by olga: not needed",
        )
        listed = await api.get("/v1/jobs?status=canceled", headers=bearer("tok-alice"))
        assert job_id in [job["job_id"] for job in listed.json()]


async def test_batch_upload_results_and_errors(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    start_api: Callable[..., ApiProcess],
    tmp_path: Path,
) -> None:
    server = start_api()
    path = write_jsonl(tmp_path / "tickets.jsonl", records(25))
    spec = {
        "job_type": "ticket_triage",
        "input_format": "records",
        "template": classify_template().model_dump(mode="json"),
    }
    async with (
        laneway_worker(dev_server_env),
        httpx.AsyncClient(base_url=server.url, timeout=30) as api,
    ):
        with path.open("rb") as upload:
            answer = await api.post(
                "/v1/jobs/batch",
                files={"file": ("tickets.jsonl", upload, "application/jsonl")},
                data={"spec": json.dumps(spec)},
                headers=bearer("tok-alice"),
            )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["job_id"]
        assert answer.json()["lane"] == "batch"
        done = await wait_for_status(api, job_id, "completed")
        assert done["job"]["records"]["succeeded"] == 25

        results = await api.get(f"/v1/jobs/{job_id}/results", headers=bearer("tok-alice"))
        lines = [json.loads(line) for line in results.text.splitlines()]
        assert [line["custom_id"] for line in lines] == [f"rec-{n}" for n in range(25)]
        errors = await api.get(f"/v1/jobs/{job_id}/errors", headers=bearer("tok-alice"))
        assert errors.status_code == 200 and errors.text == ""
        listed = await api.get("/v1/jobs?lane=batch", headers=bearer("tok-alice"))
        assert [job["job_id"] for job in listed.json()] == [job_id]


async def test_bad_input_gets_a_4xx_that_says_what_to_fix(
    dev_server_env: WorkflowEnvironment, start_api: Callable[..., ApiProcess]
) -> None:
    server = start_api()
    alice = bearer("tok-alice")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
        bad_type = await api.post(
            "/v1/jobs/background", json={**BACKGROUND_JOB, "job_type": "Bad Type"}, headers=alice
        )
        assert bad_type.status_code == 422
        assert any("job_type" in problem["loc"] for problem in bad_type.json()["detail"])

        both_inputs = {**BACKGROUND_JOB, "input": {"model": "m", "text": "x", "artifact": None}}
        no_input = await api.post(
            "/v1/jobs/background",
            json={**both_inputs, "input": {"model": "gpt-4o-mini"}},
            headers=alice,
        )
        assert no_input.status_code == 422 and "input.text or input.artifact" in no_input.text

        bad_spec = await api.post(
            "/v1/jobs/batch",
            files={"file": ("x.jsonl", b"{}\n", "application/jsonl")},
            data={"spec": "{not json"},
            headers=alice,
        )
        assert bad_spec.status_code == 422 and "spec is not valid JSON" in bad_spec.text
        no_template = await api.post(
            "/v1/jobs/batch",
            files={"file": ("x.jsonl", b"{}\n", "application/jsonl")},
            data={"spec": json.dumps({"job_type": "t", "input_format": "records"})},
            headers=alice,
        )
        assert no_template.status_code == 422, no_template.text

        unknown_action = await api.post("/v1/jobs/job-x/launch", headers=alice)
        assert unknown_action.status_code == 422 and "approve" in unknown_action.text
        bad_status = await api.get("/v1/jobs?status=done", headers=alice)
        assert bad_status.status_code == 422 and "needs_review" in bad_status.text
        missing = await api.get("/v1/jobs/job-missing", headers=alice)
        assert missing.status_code == 404 and "no job job-missing" in missing.text

        listed = await api.get("/v1/jobs", headers=alice)
        assert listed.json() == [], "nothing bad was started"
        spec = (await api.get("/openapi.json")).json()
        assert {"/v1/jobs", "/v1/jobs/{job_id}/{action}", "/webhooks/openai"} <= set(spec["paths"])
