"""The artifact store: content-addressed, atomic, streaming, verified on read."""

from __future__ import annotations

import hashlib
import io
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from laneway.jobs import ArtifactRef
from store.artifacts import (
    ArtifactCorrupted,
    ArtifactError,
    ArtifactNotFound,
    ArtifactStore,
)

MIB = 1024 * 1024


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


def stored_files(store: ArtifactStore) -> list[Path]:
    return sorted(path for path in store.root.rglob("*") if path.is_file())


def test_round_trip(store: ArtifactStore) -> None:
    data = b'{"answer": 42}\n'
    ref = store.put_bytes(data, "application/json")
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert ref.uri == f"artifact://{ref.sha256}"
    assert ref.size_bytes == len(data)
    assert ref.media_type == "application/json"
    assert store.read_bytes(ref) == data
    assert store.path_for(ref).is_relative_to(store.root)
    assert store.exists(ref)
    with store.open(ref) as handle:
        assert handle.read() == data


def test_put_is_idempotent(store: ArtifactStore) -> None:
    first = store.put_bytes(b"same bytes")
    second = store.put_bytes(b"same bytes")
    assert second == first
    assert stored_files(store) == [store.path_for(first)]  # no leftover temporary files


def test_empty_artifact(store: ArtifactStore) -> None:
    ref = store.put_bytes(b"")
    assert ref.size_bytes == 0
    assert store.read_bytes(ref) == b""


def _pseudo_random_chunks(count: int, size: int) -> Iterator[bytes]:
    block = hashlib.sha256(b"seed").digest() * (size // 32)
    for index in range(count):
        yield index.to_bytes(4, "big") + block[4:]


def test_streaming_many_megabytes_in_constant_memory(store: ArtifactStore) -> None:
    chunk_count, chunk_size = 48, MIB  # 48 MiB through the store
    expected = hashlib.sha256()
    for chunk in _pseudo_random_chunks(chunk_count, chunk_size):
        expected.update(chunk)

    tracemalloc.start()
    try:
        ref = store.put_stream(_pseudo_random_chunks(chunk_count, chunk_size), "application/jsonl")
        store.verify(ref)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert ref.size_bytes == chunk_count * chunk_size
    assert ref.sha256 == expected.hexdigest()
    assert peak < 8 * MIB, f"peak {peak / MIB:.1f} MiB: the store buffered the stream"


def test_put_stream_reads_file_objects_in_chunks(store: ArtifactStore) -> None:
    data = b"line\n" * 500_000  # many short lines: must not be iterated line by line
    ref = store.put_stream(io.BytesIO(data))
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert store.read_bytes(ref) == data


def test_put_file(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "input.jsonl"
    source.write_bytes(b'{"custom_id": "r1"}\n')
    ref = store.put_file(source, "application/jsonl")
    assert store.read_bytes(ref) == source.read_bytes()


def test_a_failed_stream_leaves_nothing_behind(store: ArtifactStore) -> None:
    def broken() -> Iterator[bytes]:
        yield b"partial"
        raise ConnectionError("download dropped")

    with pytest.raises(ConnectionError):
        store.put_stream(broken())
    assert stored_files(store) == []


def test_corruption_is_detected_on_a_verified_read(store: ArtifactStore) -> None:
    ref = store.put_bytes(b"original")
    path = store.path_for(ref)
    path.write_bytes(b"tampered")
    with pytest.raises(ArtifactCorrupted, match=ref.sha256):
        store.read_bytes(ref)
    assert store.read_bytes(ref, verify=False) == b"tampered"


def test_missing_artifact(store: ArtifactStore) -> None:
    ref = ArtifactRef(uri="artifact://" + "c" * 64, sha256="c" * 64, size_bytes=1)
    assert not store.exists(ref)
    with pytest.raises(ArtifactNotFound, match="not in the store"):
        store.read_bytes(ref)


@pytest.mark.parametrize(
    "uri",
    [
        "file:///etc/passwd",
        "artifact://../../etc/passwd",
        "artifact://" + "d" * 64,  # digest disagrees with the ref's sha256
    ],
)
def test_foreign_or_malformed_references_are_refused(store: ArtifactStore, uri: str) -> None:
    ref = ArtifactRef(uri=uri, sha256="c" * 64, size_bytes=1)
    with pytest.raises(ArtifactError):
        store.path_for(ref)
