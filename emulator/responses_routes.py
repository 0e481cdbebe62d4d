"""Responses: create (synchronous or background), retrieve, cancel, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header

from emulator.errors import bad_request, not_found
from emulator.events import Event
from emulator.executor import synchronous_response
from emulator.responses_model import ResponseRecord, parse_request
from emulator.runtime import Emulator, EmulatorDep

router = APIRouter()
ROUTE = "POST /v1/responses"


@router.post("/responses")
async def create_response(
    emulator: EmulatorDep,
    body: Annotated[dict[str, Any], Body()],
    idempotency_key: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    created = emulator.store.create_once(
        ROUTE,
        idempotency_key,
        emulator.store.responses,
        "responses",
        lambda: _create(emulator, body),
    )
    return created.render()


def _create(emulator: Emulator, body: dict[str, Any]) -> ResponseRecord:
    request = parse_request(body)
    if request.background and body.get("store") is False:
        raise bad_request("Background responses require store=true.", "store")
    if not request.background:
        return synchronous_response(body, emulator.now())
    return ResponseRecord(request=request, created_at=emulator.now())


def _get(emulator: Emulator, response_id: str) -> ResponseRecord:
    record = emulator.store.responses.get(response_id)
    if record is None:
        raise not_found(f"Response with id '{response_id}' not found.", "response_id")
    return record


@router.get("/responses/{response_id}")
async def retrieve_response(response_id: str, emulator: EmulatorDep) -> dict[str, Any]:
    with emulator.store.lock:
        return _get(emulator, response_id).render()


@router.post("/responses/{response_id}/cancel")
async def cancel_response(response_id: str, emulator: EmulatorDep) -> dict[str, Any]:
    events: list[Event] = []
    with emulator.store.lock:
        record = _get(emulator, response_id)
        if not record.request.background:
            raise bad_request("Only responses created with background=true can be cancelled.")
        emulator.responses.cancel(record, emulator.now(), events)
        rendered = record.render()
    emulator.webhooks.dispatch(events)
    return rendered


@router.delete("/responses/{response_id}")
async def delete_response(response_id: str, emulator: EmulatorDep) -> dict[str, Any]:
    with emulator.store.lock:
        _get(emulator, response_id)
        del emulator.store.responses[response_id]
    return {"id": response_id, "object": "response", "deleted": True}
