"""Synchronous endpoints: chat completions, embeddings, models."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from emulator.chat import chat_completion
from emulator.errors import APIError, bad_request
from emulator.runtime import EmulatorDep
from emulator.synth import embeddings

router = APIRouter()
MODEL_CREATED = 1_700_000_000
MODELS = (
    "gpt-5.5",
    "gpt-5",
    "gpt-5-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-4o",
    "gpt-4o-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
)


@router.post("/chat/completions")
async def create_chat_completion(
    emulator: EmulatorDep, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    if body.get("stream"):
        raise bad_request("Streaming is not supported by the Laneway emulator.", "stream")
    result = chat_completion(body, emulator.now())
    emulator.store.count("chat_completions", result["id"])
    return result


@router.post("/embeddings")
async def create_embeddings(
    emulator: EmulatorDep, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    result = embeddings(body)
    emulator.store.count("embeddings", f"embedding-{emulator.store.next_seq()}")
    return result


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": MODEL_CREATED, "owned_by": "system"}


@router.get("/models")
async def list_models() -> dict[str, Any]:
    return {"object": "list", "data": [_model(m) for m in MODELS]}


@router.get("/models/{model_id}")
async def retrieve_model(model_id: str) -> dict[str, Any]:
    if model_id not in MODELS:
        raise APIError(
            404,
            f"The model '{model_id}' does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )
    return _model(model_id)
