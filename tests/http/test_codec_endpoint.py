"""The codec endpoint (`/codec/encode`, `/codec/decode`) and large input over the API.

`laneway api` in its own process serves Temporal's remote codec protocol to operators; the
`temporal` CLI decodes a job's history through it, and nothing without it. Input text over
the inline limit is stored as an artifact before the job starts.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from collections.abc import Callable
from typing import Any

import httpx
from temporalio.api.common.v1 import Payload
from temporalio.testing import WorkflowEnvironment

from dev.binaries import temporal_cli
from laneway.background import BackgroundJobInput
from laneway.jobs import INLINE_TEXT_MAX_CHARS
from tests.conftest import WorkerFactory
from tests.http.conftest import ApiProcess, bearer
from tests.http.test_api import BACKGROUND_JOB, BRIEF, submit_brief, wait_for_status
from tests.payload_keys import TEST_PAYLOAD_KEY_ID, workers_data_converter
from workers.codec import ENCODING, KEY_ID_METADATA

UI_ORIGIN = "http://127.0.0.1:8233"  # the Temporal Web UI of the API's settings (default port)


def as_json(payload: Payload) -> dict[str, Any]:
    return {
        "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
        "data": base64.b64encode(payload.data).decode(),
    }


def from_json(found: dict[str, Any]) -> Payload:
    return Payload(
        metadata={k: base64.b64decode(v) for k, v in found.get("metadata", {}).items()},
        data=base64.b64decode(found.get("data", "")),
    )


async def test_operators_encode_and_decode_what_the_workers_wrote(
    start_api: Callable[..., ApiProcess],
) -> None:
    server = start_api()
    converter = workers_data_converter()
    [plain] = converter.payload_converter.to_payloads(["the merger memo, in full"])
    codec = converter.payload_codec
    assert codec is not None
    [sealed_by_worker] = await codec.encode([plain])
    olga = bearer("tok-olga")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
        decoded = await api.post(
            "/codec/decode",
            json={"payloads": [as_json(sealed_by_worker), as_json(plain)]},
            headers=olga,
        )
        assert decoded.status_code == 200, decoded.text
        assert [from_json(p) for p in decoded.json()["payloads"]] == [plain, plain]

        encoded = await api.post("/codec/encode", json={"payloads": [as_json(plain)]}, headers=olga)
        [sealed] = [from_json(p) for p in encoded.json()["payloads"]]
        assert sealed.metadata["encoding"] == ENCODING
        assert sealed.metadata[KEY_ID_METADATA] == TEST_PAYLOAD_KEY_ID.encode()
        assert await codec.decode([sealed]) == [plain]

        body = {"payloads": [as_json(sealed_by_worker)]}
        for headers, code in [({}, 401), (bearer("tok-unknown"), 401), (bearer("tok-rita"), 403)]:
            refused = await api.post("/codec/decode", json=body, headers=headers)
            assert refused.status_code == code, refused.text
            assert "merger" not in refused.text
        bad = await api.post("/codec/decode", content=b"{nope", headers=olga)
        assert bad.status_code == 400 and "payloads" in bad.json()["detail"]


async def test_the_web_ui_origin_may_call_the_codec_and_no_other(
    start_api: Callable[..., ApiProcess],
) -> None:
    server = start_api()
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
        for origin in (UI_ORIGIN, "http://localhost:8233"):
            allowed = await api.options("/codec/decode", headers={**preflight, "Origin": origin})
            assert allowed.status_code == 200, allowed.text
            assert allowed.headers["access-control-allow-origin"] == origin
            assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        stranger = await api.options(
            "/codec/decode", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in stranger.headers


def shown_payloads(shown: str) -> list[tuple[bytes, bytes]]:
    """(encoding, data) of every payload in `temporal workflow show -o json` output."""
    found: list[tuple[bytes, bytes]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("metadata"), dict) and "encoding" in value["metadata"]:
                encoding = base64.b64decode(value["metadata"]["encoding"])
                found.append((encoding, base64.b64decode(value.get("data", ""))))
                return
            for key, item in value.items():
                if key != "searchAttributes":  # indexed by the server: never encrypted
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(json.loads(shown))
    return found


def temporal_show(address: str, workflow_id: str, *codec: str) -> str:
    shown = subprocess.run(
        [
            str(temporal_cli()),
            "workflow",
            "show",
            "-w",
            workflow_id,
            "--address",
            address,
            "-o",
            "json",
            *codec,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return shown.stdout


async def test_the_temporal_cli_decodes_a_history_through_the_endpoint(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    start_api: Callable[..., ApiProcess],
) -> None:
    server = start_api()
    address = dev_server_env.client.service_client.config.target_host
    async with (
        laneway_worker(dev_server_env),
        httpx.AsyncClient(base_url=server.url, timeout=30) as api,
    ):
        job_id = await submit_brief(api, review_policy="auto")
        await wait_for_status(api, job_id, "completed")
    brief = BRIEF

    def shown(*codec: str) -> str:
        return temporal_show(address, job_id, *codec)

    sealed = shown_payloads(await asyncio.to_thread(shown))
    assert {encoding for encoding, _ in sealed} == {ENCODING}
    assert not [data for _, data in sealed if brief.encode() in data]
    opened = shown_payloads(
        await asyncio.to_thread(
            shown, "--codec-endpoint", f"{server.url}/codec", "--codec-auth", "Bearer tok-olga"
        )
    )
    assert ENCODING not in {encoding for encoding, _ in opened}
    assert [data for _, data in opened if brief.encode() in data], "the input, readable"


async def test_large_input_goes_in_as_an_artifact(
    dev_server_env: WorkflowEnvironment,
    laneway_worker: WorkerFactory,
    start_api: Callable[..., ApiProcess],
) -> None:
    server = start_api()
    large = ("A long contract clause. " * (INLINE_TEXT_MAX_CHARS // 20))[
        : INLINE_TEXT_MAX_CHARS + 1
    ]
    job = {
        **BACKGROUND_JOB,
        "review_policy": "auto",
        "input": {"model": "gpt-4o-mini", "text": large},
    }
    async with (
        laneway_worker(dev_server_env),
        httpx.AsyncClient(base_url=server.url, timeout=30) as api,
    ):
        answer = await api.post("/v1/jobs/background", json=job, headers=bearer("tok-alice"))
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["job_id"]
        await wait_for_status(api, job_id, "completed")
        output = await api.get(f"/v1/jobs/{job_id}/results", headers=bearer("tok-alice"))
        assert "A long contract clause." in output.text, "the provider got the stored input"
    history = await dev_server_env.client.get_workflow_handle(job_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [job_input] = await workers_data_converter().decode(
        started.input.payloads, [BackgroundJobInput]
    )
    assert job_input.spec.input.text is None and job_input.spec.input.artifact is not None
    assert job_input.spec.input.artifact.size_bytes == len(large.encode())
    assert json.dumps(job_input.spec.input_summary().model_dump(mode="json"))
