"""A content-addressed file store for data too large for workflow history.

Files live at `<root>/sha256/<first 2 hex>/<full hex>` and are named by their SHA-256, so
writing the same bytes twice (an activity retry) lands on the same file and changes nothing.
References use the URI `artifact://<sha256>`: relative to the store, not to a machine path, so
the ledger stays valid when the store's root moves (another host, another mount point).

Writes go to a temporary file in the store, are fsynced and then renamed into place, so a
reader never sees a half-written artifact.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Final, Protocol, runtime_checkable

from laneway.jobs import ArtifactRef

URI_SCHEME: Final = "artifact://"
CHUNK_BYTES: Final = 1024 * 1024
DEFAULT_MEDIA_TYPE: Final = "application/octet-stream"
_HEX_DIGEST: Final = re.compile(r"^[0-9a-f]{64}$")


@runtime_checkable
class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class ArtifactError(Exception):
    pass


class ArtifactNotFound(ArtifactError, FileNotFoundError):
    pass


class ArtifactCorrupted(ArtifactError):
    """The stored bytes no longer match the reference's digest or size."""


def uri_for(sha256: str) -> str:
    return f"{URI_SCHEME}{sha256}"


def _chunks_of(source: Readable | Iterable[bytes]) -> Iterator[bytes]:
    # A file object is read in fixed chunks; iterating it would split on newlines instead.
    if isinstance(source, Readable):
        while chunk := source.read(CHUNK_BYTES):
            yield chunk
    else:
        yield from source


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def put_bytes(self, data: bytes, media_type: str = DEFAULT_MEDIA_TYPE) -> ArtifactRef:
        return self.put_stream([data], media_type)

    def put_stream(
        self, source: Readable | Iterable[bytes], media_type: str = DEFAULT_MEDIA_TYPE
    ) -> ArtifactRef:
        """Store bytes from a binary file object or an iterable of chunks, in constant memory."""
        with self.writer(media_type) as writer:
            for chunk in _chunks_of(source):
                writer.write(chunk)
        return writer.ref

    def writer(self, media_type: str = DEFAULT_MEDIA_TYPE) -> ArtifactWriter:
        """An artifact written piece by piece: `with store.writer() as w: w.write(...)`,
        then `w.ref`. Nothing appears in the store unless the block ends without error."""
        return ArtifactWriter(self, media_type)

    def put_file(self, path: Path, media_type: str = DEFAULT_MEDIA_TYPE) -> ArtifactRef:
        with path.open("rb") as source:
            return self.put_stream(source, media_type)

    def path_for(self, ref: ArtifactRef) -> Path:
        """Where the artifact's bytes are (or would be) on disk."""
        sha256 = self._digest_of(ref)
        return self.root / "sha256" / sha256[:2] / sha256

    def exists(self, ref: ArtifactRef) -> bool:
        return self.path_for(ref).is_file()

    def open(self, ref: ArtifactRef) -> BinaryIO:
        path = self.path_for(ref)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise ArtifactNotFound(f"artifact {ref.uri} is not in the store at {path}") from None

    def iter_chunks(self, ref: ArtifactRef, *, verify: bool = False) -> Iterator[bytes]:
        """The artifact's bytes in chunks; with `verify`, the last chunk is followed by a
        digest check that raises ArtifactCorrupted (so consumers must read to the end)."""
        digest = hashlib.sha256()
        size = 0
        with self.open(ref) as source:
            while chunk := source.read(CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
                yield chunk
        if verify:
            _check(ref, digest.hexdigest(), size)

    def read_bytes(self, ref: ArtifactRef, *, verify: bool = True) -> bytes:
        return b"".join(self.iter_chunks(ref, verify=verify))

    def verify(self, ref: ArtifactRef) -> None:
        """Raise ArtifactCorrupted unless the stored bytes match `ref`."""
        for _chunk in self.iter_chunks(ref, verify=True):
            pass

    @staticmethod
    def _digest_of(ref: ArtifactRef) -> str:
        if not ref.uri.startswith(URI_SCHEME):
            raise ArtifactError(f"not an artifact store reference: {ref.uri!r}")
        sha256 = ref.uri.removeprefix(URI_SCHEME)
        # The digest becomes a path: anything but 64 hex digits could escape the root.
        if not _HEX_DIGEST.match(sha256) or sha256 != ref.sha256:
            raise ArtifactError(f"malformed artifact reference {ref.uri!r} (sha256 {ref.sha256})")
        return sha256


class ArtifactWriter:
    """Writes to a temporary file in the store; on close, fsyncs and renames it into place."""

    def __init__(self, store: ArtifactStore, media_type: str) -> None:
        self._store = store
        self._media_type = media_type
        self._digest = hashlib.sha256()
        self.size = 0
        self._ref: ArtifactRef | None = None
        incoming = store.root / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=incoming, prefix=".part-")
        self._temp_path = Path(temp_name)
        self._out = os.fdopen(handle, "wb")

    def write(self, data: bytes) -> None:
        self._digest.update(data)
        self.size += len(data)
        self._out.write(data)

    @property
    def ref(self) -> ArtifactRef:
        if self._ref is None:
            raise ArtifactError("the artifact is complete only once its writer is closed")
        return self._ref

    def close(self) -> ArtifactRef:
        try:
            self._out.flush()
            os.fsync(self._out.fileno())
            self._out.close()
            sha256 = self._digest.hexdigest()
            ref = ArtifactRef(
                uri=uri_for(sha256),
                sha256=sha256,
                size_bytes=self.size,
                media_type=self._media_type,
            )
            final = self._store.path_for(ref)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._temp_path, final)  # atomic; same bytes if it already existed
            self._ref = ref
            return ref
        finally:
            self.discard()

    def discard(self) -> None:
        if not self._out.closed:
            self._out.close()
        self._temp_path.unlink(missing_ok=True)

    def __enter__(self) -> ArtifactWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()


def _check(ref: ArtifactRef, sha256: str, size: int) -> None:
    if sha256 != ref.sha256 or size != ref.size_bytes:
        raise ArtifactCorrupted(
            f"artifact {ref.uri} is corrupted: expected {ref.size_bytes} bytes with sha256 "
            f"{ref.sha256}, found {size} bytes with sha256 {sha256}"
        )
