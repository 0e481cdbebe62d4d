"""Files: upload (multipart), list, retrieve, delete, content."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import IO, Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import FileResponse
from starlette.datastructures import UploadFile

from emulator.errors import bad_request, not_found
from emulator.runtime import Emulator, EmulatorDep
from emulator.store import FILE_TTL_SECONDS, StoredFile

router = APIRouter()
UPLOAD_PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})
ROUTE = "POST /v1/files"


@router.post("/files")
async def create_file(
    request: Request,
    emulator: EmulatorDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    form = await request.form(max_part_size=1024 * 1024)
    upload = form.get("file")
    purpose = form.get("purpose")
    if not isinstance(upload, UploadFile):
        raise bad_request(
            "Missing required parameter: 'file'.", "file", "missing_required_parameter"
        )
    if not isinstance(purpose, str) or purpose not in UPLOAD_PURPOSES:
        raise bad_request(f"Invalid value for 'purpose': {purpose!r}.", "purpose", "invalid_value")
    replayed = emulator.store.replay(ROUTE, idempotency_key)
    if replayed is not None and replayed in emulator.store.files:
        return emulator.store.files[replayed].render()
    stored = await _store_upload(
        emulator, upload, purpose, _expires_after(form.get("expires_after[seconds]"))
    )
    winner = emulator.store.remember(ROUTE, idempotency_key, stored.id)
    if winner != stored.id:  # a concurrent request with the same key won
        stored.path.unlink(missing_ok=True)
        return emulator.store.files[winner].render()
    return emulator.store.add_file(stored).render()


def _expires_after(value: Any) -> int | None:
    if value is None:
        return None
    try:
        seconds = int(str(value))
    except ValueError:
        seconds = -1
    if not 3600 <= seconds <= 2_592_000:
        raise bad_request(
            "Invalid 'expires_after.seconds': expected 3600 to 2592000.", "expires_after.seconds"
        )
    return seconds


async def _store_upload(
    emulator: Emulator, upload: UploadFile, purpose: str, expires_after: int | None
) -> StoredFile:
    filename = upload.filename or "upload"
    if purpose == "batch" and not filename.endswith(".jsonl"):
        raise bad_request("Invalid file format for Batch API. Must be .jsonl", "file")
    limit = emulator.config.max_batch_input_bytes if purpose == "batch" else 512 * 1024 * 1024
    path = emulator.store.new_file_path()
    size = await asyncio.to_thread(_copy, upload.file, path)
    if size > limit:
        path.unlink(missing_ok=True)
        raise bad_request(
            f"File is too large: {size} bytes; the maximum for purpose '{purpose}' is {limit}.",
            "file",
            "file_too_large",
        )
    now = emulator.now()
    if expires_after is None and purpose == "batch":
        expires_after = FILE_TTL_SECONDS
    expires_at = now + expires_after if expires_after else None
    return StoredFile(filename, purpose, size, now, expires_at, path)


def _copy(source: IO[bytes], path: Path) -> int:
    with path.open("wb") as target:
        shutil.copyfileobj(source, target, 1024 * 1024)
    return path.stat().st_size


@router.get("/files")
async def list_files(
    emulator: EmulatorDep,
    purpose: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
    after: str | None = None,
) -> dict[str, Any]:
    with emulator.store.lock:
        files = [f for f in emulator.store.files.values() if purpose in (None, f.purpose)]
    if order == "desc":  # dict order is upload order, and the clock never goes back
        files.reverse()
    ids = [f.id for f in files]
    start = ids.index(after) + 1 if after in ids else 0
    page = files[start : start + limit]
    return {
        "object": "list",
        "data": [f.render() for f in page],
        # ListFilesResponse requires both ids as strings, even for an empty page.
        "first_id": page[0].id if page else "",
        "last_id": page[-1].id if page else "",
        "has_more": start + limit < len(files),
    }


def _get(emulator: Emulator, file_id: str) -> StoredFile:
    with emulator.store.lock:
        stored = emulator.store.files.get(file_id)
    if stored is None:
        raise not_found(f"No such File object: {file_id}", "id")
    return stored


@router.get("/files/{file_id}")
async def retrieve_file(file_id: str, emulator: EmulatorDep) -> dict[str, Any]:
    return _get(emulator, file_id).render()


@router.delete("/files/{file_id}")
async def delete_file(file_id: str, emulator: EmulatorDep) -> dict[str, Any]:
    _get(emulator, file_id)
    emulator.store.delete_file(file_id)
    return {"id": file_id, "object": "file", "deleted": True}


@router.get("/files/{file_id}/content")
async def file_content(file_id: str, emulator: EmulatorDep) -> FileResponse:
    stored = _get(emulator, file_id)
    return FileResponse(stored.path, media_type="application/octet-stream")
