"""In-memory state with file bytes on disk; one re-entrant lock guards it all.

Routes (event loop) and the engine (a worker thread) both touch it, so every read or write of a
record happens under `store.lock`; long work (validating a file, generating output) runs outside.
"""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from emulator import ids
from emulator.batch_model import BatchRecord
from emulator.responses_model import ResponseRecord


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


_Identified = TypeVar("_Identified", bound=_HasId)

FILE_TTL_SECONDS = 30 * 24 * 3600


@dataclass
class StoredFile:
    filename: str
    purpose: str
    bytes: int
    created_at: int
    expires_at: int | None
    path: Path
    id: str = field(default_factory=ids.file_id)

    def render(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": self.expires_at,
            "status_details": None,
        }


class Store:
    def __init__(self, data_dir: Path, *, strict: bool = False) -> None:
        self.lock = threading.RLock()
        self.strict = strict  # Idempotency-Key ignored: every create makes a new object
        self.data_dir = data_dir
        self.files_dir = data_dir / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, BatchRecord] = {}
        self.responses: dict[str, ResponseRecord] = {}
        self.created: Counter[str] = Counter()
        self.created_ids: dict[str, list[str]] = {}
        self._idempotency: dict[tuple[str, str], str] = {}
        self._seq = 0

    def next_seq(self) -> int:
        with self.lock:
            self._seq += 1
            return self._seq

    def count(self, kind: str, object_id: str) -> None:
        with self.lock:
            self.created[kind] += 1
            self.created_ids.setdefault(kind, []).append(object_id)

    def new_file_path(self) -> Path:
        return self.files_dir / ids.new_id("blob_")

    def add_file(self, stored: StoredFile, kind: str = "files") -> StoredFile:
        with self.lock:
            self.files[stored.id] = stored
            self.count(kind, stored.id)
        return stored

    def delete_file(self, file_id: str) -> StoredFile | None:
        with self.lock:
            stored = self.files.pop(file_id, None)
        if stored is not None:
            stored.path.unlink(missing_ok=True)
        return stored

    def replay(self, route: str, key: str | None) -> str | None:
        """The id created earlier under this idempotency key on this route, if any."""
        if not key or self.strict:
            return None
        with self.lock:
            return self._idempotency.get((route, key))

    def create_once(
        self,
        route: str,
        key: str | None,
        objects: dict[str, _Identified],
        kind: str,
        make: Callable[[], _Identified],
    ) -> _Identified:
        """Same Idempotency-Key on the same route: the same object, created and counted once."""
        with self.lock:
            replayed = self.replay(route, key)
            if replayed is not None and replayed in objects:
                return objects[replayed]
            created = make()
            self.remember(route, key, created.id)
            objects[created.id] = created
            self.count(kind, created.id)
            return created

    def remember(self, route: str, key: str | None, object_id: str) -> str:
        """Record `object_id` under the key; returns the id that owns the key (first wins)."""
        if not key or self.strict:
            return object_id
        with self.lock:
            return self._idempotency.setdefault((route, key), object_id)

    def clear(self) -> None:
        with self.lock:
            self.files.clear()
            self.batches.clear()
            self.responses.clear()
            self.created.clear()
            self.created_ids.clear()
            self._idempotency.clear()
            shutil.rmtree(self.files_dir, ignore_errors=True)
            self.files_dir.mkdir(parents=True, exist_ok=True)

    def stats(self) -> dict[str, Any]:
        kinds = ("files", "output_files", "batches", "responses", "chat_completions", "embeddings")
        with self.lock:
            return {
                "counts": {kind: self.created[kind] for kind in kinds},
                "ids": {kind: list(self.created_ids.get(kind, [])) for kind in kinds},
                "live": {
                    "files": len(self.files),
                    "batches": len(self.batches),
                    "responses": len(self.responses),
                },
            }
