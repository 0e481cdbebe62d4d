"""Refusals and errors from the HTTP API are sentences for people: no class names."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import httpx
from temporalio.testing import WorkflowEnvironment

from emulator.server import EmulatorServer
from tests.conftest import WorkerFactory
from tests.http.conftest import ApiProcess, bearer
from tests.http.test_api import BACKGROUND_JOB, submit_brief, wait_for_status
from tests.plain_messages import internal_names


async def test_refusals_and_errors_name_no_class(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    start_api: Callable[..., ApiProcess],
    emulator: EmulatorServer,
) -> None:
    server = start_api()
    alice, rita, olga, gina = (bearer(f"tok-{name}") for name in ("alice", "rita", "olga", "gina"))
    failed_id = f"job-{uuid.uuid4().hex}"
    emulator.control.add_fault(
        {
            "kind": "response_fail",
            "match": {"metadata_key": "laneway_job_id", "metadata_value": failed_id},
            "message": "GPU fell over",
        }
    )
    async with (
        laneway_worker(dev_server_env),
        httpx.AsyncClient(base_url=server.url, timeout=30) as api,
    ):
        in_review = await submit_brief(api)
        failed = await submit_brief(api, job_id=failed_id)
        await wait_for_status(api, in_review, "needs_review")
        await wait_for_status(api, failed, "failed")
        batch_file = {"file": ("x.jsonl", b'{"id": 1}\n', "application/jsonl")}

        answers = [
            await api.get("/v1/jobs"),
            await api.get("/v1/jobs", headers=bearer("tok-unknown")),
            await api.get(f"/v1/jobs/{in_review}", headers=gina),
            await api.post(f"/v1/jobs/{in_review}/approve", headers=alice),
            await api.post(f"/v1/jobs/{in_review}/approve", headers=olga),
            await api.post(f"/v1/jobs/{in_review}/retry", headers=rita),
            await api.post(f"/v1/jobs/{failed}/escalate", headers=rita),
            await api.get(f"/v1/jobs/{failed}/results", headers=alice),
            await api.get("/v1/jobs/job-missing", headers=alice),
            await api.post(f"/v1/jobs/{in_review}/launch", headers=alice),
            await api.post(f"/v1/jobs/{in_review}/reject", json={"note": "x" * 2001}, headers=rita),
            await api.get("/v1/jobs?status=done", headers=alice),
            await api.post(
                "/v1/jobs/background", json={**BACKGROUND_JOB, "input": "text"}, headers=alice
            ),
            await api.post(
                "/v1/jobs/background",
                json={**BACKGROUND_JOB, "input": {"model": "gpt-4o-mini"}},
                headers=alice,
            ),
            await api.post(
                "/v1/jobs/background",
                json={**BACKGROUND_JOB, "side_effect": {"kind": "carrier_pigeon"}},
                headers=alice,
            ),
            await api.post(
                "/v1/jobs/batch",
                files=batch_file,
                data={"spec": json.dumps({"job_type": "t", "input_format": "records"})},
                headers=alice,
            ),
            await api.post(
                "/v1/jobs/batch",
                files=batch_file,
                data={"spec": json.dumps({"job_type": "t", "template": "classify"})},
                headers=alice,
            ),
            await api.post(
                "/v1/jobs/batch", files=batch_file, data={"spec": "{not json"}, headers=alice
            ),
        ]

    assert [answer.status_code for answer in answers] == [
        *(401, 401, 403, 403, 403, 409, 409, 409, 404),
        *(422,) * 9,
    ], [answer.text for answer in answers]
    said = [answer.text for answer in answers]
    assert [(text, internal_names(text)) for text in said if internal_names(text)] == []
