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
        incoming = self.root / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        handle, temp_name = tempfile.mkstemp(dir=incoming, prefix=".part-")
        temp_path = Path(temp_name)
        try:
            with os.fdopen(handle, "wb") as out:
                for chunk in _chunks_of(source):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            ref = ArtifactRef(
                uri=uri_for(digest.hexdigest()),
                sha256=digest.hexdigest(),
                size_bytes=size,
                media_type=media_type,
            )
            final = self.path_for(ref)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp_path, final)  # atomic; same bytes if it already existed
            return ref
        finally:
            temp_path.unlink(missing_ok=True)

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


def _check(ref: ArtifactRef, sha256: str, size: int) -> None:
    if sha256 != ref.sha256 or size != ref.size_bytes:
        raise ArtifactCorrupted(
            f"artifact {ref.uri} is corrupted: expected {ref.size_bytes} bytes with sha256 "
            f"{ref.sha256}, found {size} bytes with sha256 {sha256}"
        )
