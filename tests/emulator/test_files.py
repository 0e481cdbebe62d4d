"""Files: upload, list, retrieve, delete, content, and the batch-input checks."""

from __future__ import annotations

import io

import openai
import pytest
from openai import OpenAI

from tests.emulator.conftest import StartEmulator, sdk
from tests.emulator.helpers import chat_line, error_of, jsonl, upload


def test_upload_retrieve_content_delete(client: OpenAI) -> None:
    data = jsonl([chat_line(1), chat_line(2)])
    created = upload(client, data, "records.jsonl")

    assert created.id.startswith("file-")
    assert (created.object, created.purpose, created.status) == ("file", "batch", "processed")
    assert created.bytes == len(data) and created.filename == "records.jsonl"
    assert created.expires_at is not None and created.expires_at > created.created_at
    assert client.files.retrieve(created.id) == created
    assert client.files.content(created.id).content == data

    deleted = client.files.delete(created.id)
    assert deleted.deleted and deleted.id == created.id
    with pytest.raises(openai.NotFoundError) as err:
        client.files.retrieve(created.id)
    assert error_of(err.value) == {
        "message": f"No such File object: {created.id}",
        "type": "invalid_request_error",
        "param": "id",
        "code": None,
    }


def test_list_filters_orders_and_pages(client: OpenAI) -> None:
    ids = [upload(client, jsonl([chat_line(i)]), f"f{i}.jsonl").id for i in range(5)]
    other = client.files.create(file=("notes.txt", io.BytesIO(b"hi")), purpose="user_data")

    newest_first = [f.id for f in client.files.list(purpose="batch")]
    assert newest_first == ids[::-1]
    oldest_first = [f.id for f in client.files.list(purpose="batch", order="asc")]
    assert oldest_first == ids

    page = client.files.list(purpose="batch", order="asc", limit=2)
    assert [f.id for f in page.data] == ids[:2] and page.has_more
    assert [f.id for f in page.get_next_page().data] == ids[2:4]
    assert other.id in [f.id for f in client.files.list()]


def test_batch_files_must_be_jsonl(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("input.csv", io.BytesIO(b"a,b\n")), purpose="batch")
    assert err.value.status_code == 400
    assert error_of(err.value)["message"] == "Invalid file format for Batch API. Must be .jsonl"


def test_batch_input_over_the_size_limit_is_rejected(start_emulator: StartEmulator) -> None:
    client = sdk(start_emulator(max_batch_input_bytes=100))
    upload(client, b"x" * 100)
    with pytest.raises(openai.BadRequestError) as err:
        upload(client, b"x" * 101)
    assert err.value.code == "file_too_large"
    assert len(client.files.list().data) == 1


def test_unknown_purpose_is_rejected(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("a.jsonl", io.BytesIO(b"{}")), purpose="nonsense")  # type: ignore[arg-type]
    assert err.value.param == "purpose"
