"""Over HTTP: a bad job id or a side effect that could escape gets a 422 that says what to do,
and `GET /v1/jobs/{id}` shows the reviewer where the job will deliver (issue 11, Deliver 1)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
from temporalio.testing import WorkflowEnvironment

from tests.conftest import TEST_WEBHOOK_SECRET, TEST_WEBHOOK_SECRET_REF, WorkerFactory
from tests.http.conftest import ApiProcess, bearer
from tests.http.test_api import BACKGROUND_JOB, submit_brief, wait_for_status


async def test_bad_ids_and_escaping_side_effects_get_422_and_start_nothing(
    dev_server_env: WorkflowEnvironment, start_api: Callable[..., ApiProcess]
) -> None:
    server = start_api()
    alice = bearer("tok-alice")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:

        async def submit(**fields: object) -> httpx.Response:
            return await api.post(
                "/v1/jobs/background", json={**BACKGROUND_JOB, **fields}, headers=alice
            )

        for job_id in ("../x", "a/b", "a b"):
            answer = await submit(job_id=job_id)
            assert answer.status_code == 422, answer.text
            assert "job_id" in answer.text
        batch = await api.post(
            "/v1/jobs/batch",
            files={"file": ("x.jsonl", b"{}\n", "application/jsonl")},
            data={"spec": json.dumps({"job_type": "t", "job_id": "../../x"})},
            headers=alice,
        )
        assert batch.status_code == 422 and "is not allowed" in batch.text, batch.text

        escape = await submit(side_effect={"kind": "deliver_to_outbox", "path": "../x"})
        assert escape.status_code == 422 and "outbox path" in escape.text
        anywhere = await submit(side_effect={"kind": "deliver_to_outbox", "directory": "/etc"})
        assert anywhere.status_code == 422 and "give path" in anywhere.text

        inline = await submit(
            side_effect={
                "kind": "post_webhook",
                "url": "https://hooks.example.com/in",
                "secret": TEST_WEBHOOK_SECRET,
            }
        )
        assert inline.status_code == 422 and "secret_ref" in inline.text
        assert TEST_WEBHOOK_SECRET not in inline.text
        metadata = await submit(
            side_effect={
                "kind": "post_webhook",
                "url": "https://169.254.169.254/latest/meta-data",
                "secret_ref": TEST_WEBHOOK_SECRET_REF,
            }
        )
        assert metadata.status_code == 422 and "internal address" in metadata.text
        plain_http = await submit(
            side_effect={
                "kind": "post_webhook",
                "url": "http://hooks.example.com/in",
                "secret_ref": TEST_WEBHOOK_SECRET_REF,
            }
        )
        assert plain_http.status_code == 422 and "must use https" in plain_http.text

        listed = await api.get("/v1/jobs", headers=alice)
        assert listed.json() == [], "nothing bad was started"


async def test_job_details_show_the_destination(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    start_api: Callable[..., ApiProcess],
) -> None:
    server = start_api()
    async with (
        laneway_worker(dev_server_env),
        httpx.AsyncClient(base_url=server.url, timeout=30) as api,
    ):
        job_id = await submit_brief(
            api, side_effect={"kind": "deliver_to_outbox", "path": "acme/briefs"}
        )
        details = await wait_for_status(api, job_id, "needs_review")
        assert details["side_effect"] == {
            "kind": "deliver_to_outbox",
            "destination": "outbox:acme/briefs",
        }
        await api.post(f"/v1/jobs/{job_id}/reject", headers=bearer("tok-rita"))
