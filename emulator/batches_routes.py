"""Batches: create (checks OpenAI makes before accepting), retrieve, list, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query

from emulator.batch_model import KNOWN_ENDPOINTS, BatchRecord
from emulator.errors import bad_request, not_found
from emulator.runtime import Emulator, EmulatorDep

router = APIRouter()
ROUTE = "POST /v1/batches"


@router.post("/batches")
async def create_batch(
    emulator: EmulatorDep,
    body: Annotated[dict[str, Any], Body()],
    idempotency_key: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    created = emulator.store.create_once(
        ROUTE,
        idempotency_key,
        emulator.store.batches,
        "batches",
        lambda: _new_batch(emulator, body),
    )
    return created.render()


def _new_batch(emulator: Emulator, body: dict[str, Any]) -> BatchRecord:
    input_file_id = _required_str(body, "input_file_id")
    endpoint = _required_str(body, "endpoint")
    window = _required_str(body, "completion_window")
    if endpoint not in KNOWN_ENDPOINTS:
        raise bad_request(
            f"Invalid value for 'endpoint': {endpoint!r}. Supported values are: "
            + ", ".join(KNOWN_ENDPOINTS),
            "endpoint",
            "invalid_value",
        )
    if window != "24h":
        raise bad_request(
            f"Invalid value for 'completion_window': {window!r}. Supported values are: '24h'.",
            "completion_window",
            "invalid_value",
        )
    stored = emulator.store.files.get(input_file_id)
    if stored is None:
        raise bad_request(f"No such File object: {input_file_id}", "input_file_id", "invalid_value")
    if stored.purpose != "batch":
        raise bad_request(
            f"File {input_file_id} has purpose '{stored.purpose}'; batch input needs 'batch'.",
            "input_file_id",
            "invalid_value",
        )
    now = emulator.now()
    return BatchRecord(
        endpoint=endpoint,
        input_file_id=input_file_id,
        completion_window=window,
        metadata=_metadata(body.get("metadata")),
        created_at=now,
        expires_at=now + emulator.config.batch_completion_window_seconds,
        seq=emulator.store.next_seq(),
    )


def _required_str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise bad_request(
            f"Missing required parameter: '{name}'.", name, "missing_required_parameter"
        )
    return value


def _metadata(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    ok = isinstance(value, dict) and len(value) <= 16
    ok = ok and all(
        isinstance(k, str) and len(k) <= 64 and isinstance(v, str) and len(v) <= 512
        for k, v in value.items()
    )
    if not ok:
        raise bad_request(
            "Invalid 'metadata': at most 16 pairs, keys up to 64 characters, string values up "
            "to 512 characters.",
            "metadata",
            "invalid_value",
        )
    assert isinstance(value, dict)
    return dict(value)


def _get(emulator: Emulator, batch_id: str) -> BatchRecord:
    batch = emulator.store.batches.get(batch_id)
    if batch is None:
        raise not_found(f"No batch found with id '{batch_id}'.", "batch_id")
    return batch


@router.get("/batches/{batch_id}")
async def retrieve_batch(batch_id: str, emulator: EmulatorDep) -> dict[str, Any]:
    with emulator.store.lock:
        return _get(emulator, batch_id).render()


@router.get("/batches")
async def list_batches(
    emulator: EmulatorDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    with emulator.store.lock:
        batches = sorted(emulator.store.batches.values(), key=lambda b: b.seq, reverse=True)
        ids = [b.id for b in batches]
        start = ids.index(after) + 1 if after in ids else 0
        page = [b.render() for b in batches[start : start + limit]]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": start + limit < len(batches),
    }


@router.post("/batches/{batch_id}/cancel")
async def cancel_batch(batch_id: str, emulator: EmulatorDep) -> dict[str, Any]:
    with emulator.store.lock:
        batch = _get(emulator, batch_id)
        if batch.status in ("completed", "failed", "expired"):
            raise bad_request(f"Cannot cancel a batch with status '{batch.status}'.")
        emulator.batches.cancel(batch, emulator.now())
        return batch.render()
