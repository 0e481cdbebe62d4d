"""Files through the SDK: every answer matches the spec and parses into the SDK's types."""

from __future__ import annotations

import json

import openai
import pytest
from openai.types import FileDeleted, FileObject

from emulator.server import EmulatorServer
from tests.conformance.helpers import jsonl, request_lines
from tests.conformance.recorder import SpecRecorder
from tests.conformance.sdk_models import assert_known


def test_create_retrieve_list_content_delete(
    fast_emulator: EmulatorServer, recorder: SpecRecorder
) -> None:
    client = recorder.client(fast_emulator.base_url)
    lines = request_lines("/v1/embeddings", 3)
    created = client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    assert isinstance(created, FileObject) and created.purpose == "batch"
    assert created.bytes == len(jsonl(lines).getvalue()) and created.filename == "in.jsonl"
    fetched = client.files.retrieve(created.id)
    assert fetched.id == created.id and fetched.bytes == created.bytes
    assert_known(fetched)
    assert created.id in [f.id for f in client.files.list(purpose="batch")]
    content = client.files.content(created.id).text.splitlines()
    assert [json.loads(line) for line in content] == lines
    deleted = client.files.delete(created.id)
    assert isinstance(deleted, FileDeleted) and deleted.deleted and deleted.id == created.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(created.id)
    recorder.assert_clean()


def test_expires_after(fast_emulator: EmulatorServer, recorder: SpecRecorder) -> None:
    client = recorder.client(fast_emulator.base_url)
    lines = jsonl(request_lines("/v1/embeddings", 1))
    created = client.files.create(
        file=("e.jsonl", lines),
        purpose="batch",
        expires_after={"anchor": "created_at", "seconds": 7200},
    )
    assert created.expires_at == created.created_at + 7200
    recorder.assert_clean()


def test_list_pages_in_both_orders(fast_emulator: EmulatorServer, recorder: SpecRecorder) -> None:
    client = recorder.client(fast_emulator.base_url)
    line = request_lines("/v1/embeddings", 1)
    ids = [
        client.files.create(file=(f"p{n}.jsonl", jsonl(line)), purpose="user_data").id
        for n in range(3)
    ]
    first = client.files.list(purpose="user_data", order="asc", limit=2)
    assert [f.id for f in first.data] == ids[:2] and first.has_more
    walked = [f.id for f in client.files.list(purpose="user_data", order="asc", limit=2)]
    assert walked[-3:] == ids  # auto-pagination follows `after`
    newest = client.files.list(purpose="user_data", order="desc", limit=1)
    assert newest.data[0].id == ids[-1]
    recorder.assert_clean()


def test_an_empty_list(fast_emulator: EmulatorServer, recorder: SpecRecorder) -> None:
    # ListFilesResponse requires first_id and last_id as strings, even for an empty page.
    client = recorder.client(fast_emulator.base_url)
    assert client.files.list(purpose="vision").data == []
    recorder.assert_clean()


def test_refused_uploads(fast_emulator: EmulatorServer, recorder: SpecRecorder) -> None:
    client = recorder.client(fast_emulator.base_url)
    with pytest.raises(openai.BadRequestError) as bad_purpose:
        client.files.create(file=("a.jsonl", jsonl([])), purpose="nonsense")  # type: ignore[arg-type]
    assert bad_purpose.value.param == "purpose"
    with pytest.raises(openai.BadRequestError):  # expiry must be at least 3600 s
        client.files.create(
            file=("a.jsonl", jsonl([])),
            purpose="batch",
            expires_after={"anchor": "created_at", "seconds": 60},
        )
    with pytest.raises(openai.BadRequestError):
        client.files.list(limit=0)
    with pytest.raises(openai.BadRequestError):
        client.files.create(file=("a.txt", jsonl([])), purpose="batch")  # batch wants .jsonl
    recorder.assert_clean()
