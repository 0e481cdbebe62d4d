"""Batches through the SDK: each status on the way, result lines, and the refusals."""

from __future__ import annotations

from typing import Final

import openai
import pytest
from openai.types import Batch

from emulator.control import EmulatorControl
from emulator.server import EmulatorServer
from tests.conformance.conftest import CLOCK_KEY
from tests.conformance.helpers import (
    ENDPOINTS,
    check_line_body,
    request_lines,
    result_lines,
    upload,
    wait_for_batch,
)
from tests.conformance.recorder import SpecRecorder
from tests.conformance.sdk_models import assert_known

CHAT: Final = "/v1/chat/completions"


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_completed_batch_and_its_lines(
    fast_emulator: EmulatorServer, recorder: SpecRecorder, endpoint: str
) -> None:
    client = recorder.client(fast_emulator.base_url)
    fast_emulator.control.add_fault(  # some requests fail: the error file gets lines too
        {"kind": "batch_fail_fraction", "match": {"metadata_key": "lines"}, "fraction": 0.25}
    )
    batch = client.batches.create(
        input_file_id=upload(client, request_lines(endpoint, 20)),
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window="24h",
        metadata={"lines": endpoint},
    )
    assert isinstance(batch, Batch) and batch.status == "validating"
    done = wait_for_batch(client, batch.id)
    assert done.status == "completed" and done.request_counts is not None
    assert done.request_counts.total == 20 and done.request_counts.failed > 0
    assert done.completed_at is not None and done.metadata == {"lines": endpoint}
    assert_known(done)
    assert done.output_file_id and done.error_file_id
    for file_id in (done.output_file_id, done.error_file_id):
        assert client.files.retrieve(file_id).purpose == "batch_output"
    output = result_lines(client, done.output_file_id)
    errors = result_lines(client, done.error_file_id)
    assert (len(output), len(errors)) == (done.request_counts.completed, done.request_counts.failed)
    for line in output + errors:
        check_line_body(endpoint, line)
    assert sorted(line["custom_id"] for line in output + errors) == sorted(
        f"r{i}" for i in range(20)
    )
    assert all(line["response"]["status_code"] >= 400 for line in errors)
    recorder.assert_clean()


def test_every_status_on_the_way_to_completed(
    clock_emulator: EmulatorServer, recorder: SpecRecorder
) -> None:
    client, control = recorder.client(clock_emulator.base_url, CLOCK_KEY), clock_emulator.control
    batch = client.batches.create(
        input_file_id=upload(client, request_lines(CHAT, 10)),
        endpoint=CHAT,
        completion_window="24h",
    )
    assert batch.status == "validating" and batch.in_progress_at is None
    seen = [batch]
    for seconds in (5, 0.3, 2, 10):  # validating 5 s, 0.15 s a request, finalizing 10 s
        control.advance_clock(seconds)
        seen.append(client.batches.retrieve(batch.id))
    statuses = [b.status for b in seen]
    assert statuses == ["validating", "in_progress", "in_progress", "finalizing", "completed"]
    done = seen[-1]
    assert None not in (done.in_progress_at, done.finalizing_at, done.completed_at)
    assert done.output_file_id and done.error_file_id is None and done.usage is not None
    assert done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens
    recorder.assert_clean()


def test_cancel_keeps_partial_output(
    clock_emulator: EmulatorServer, recorder: SpecRecorder
) -> None:
    client, control = recorder.client(clock_emulator.base_url, CLOCK_KEY), clock_emulator.control
    batch = client.batches.create(
        input_file_id=upload(client, request_lines(CHAT, 20)),
        endpoint=CHAT,
        completion_window="24h",
    )
    control.advance_clock(6)  # in progress, some requests done
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    control.advance_clock(30)
    cancelled = client.batches.retrieve(batch.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    assert cancelled.request_counts is not None and 0 < cancelled.request_counts.completed < 20
    partial = result_lines(client, cancelled.output_file_id)
    assert len(partial) == cancelled.request_counts.completed
    with pytest.raises(openai.BadRequestError):
        client.batches.cancel(completed_batch(client, control))
    recorder.assert_clean()


def completed_batch(client: openai.OpenAI, control: EmulatorControl) -> str:
    """A completed batch's id, to show cancelling it is refused."""
    batch = client.batches.create(
        input_file_id=upload(client, request_lines(CHAT, 1)), endpoint=CHAT, completion_window="24h"
    )
    control.advance_clock(60)
    assert client.batches.retrieve(batch.id).status == "completed"
    return batch.id


def test_expired_requests_have_error_lines(
    clock_emulator: EmulatorServer, recorder: SpecRecorder
) -> None:
    client, control = recorder.client(clock_emulator.base_url, CLOCK_KEY), clock_emulator.control
    control.add_fault(
        {"kind": "batch_expire", "match": {"metadata_key": "expire"}, "fraction": 0.25}
    )
    batch = client.batches.create(
        input_file_id=upload(client, request_lines(CHAT, 20)),
        endpoint=CHAT,
        completion_window="24h",
        metadata={"expire": "yes"},
    )
    control.advance_clock(24 * 3600 + 60)
    expired = client.batches.retrieve(batch.id)
    assert expired.status == "expired" and expired.expired_at is not None
    assert expired.request_counts is not None and expired.request_counts.failed == 15
    lines = result_lines(client, expired.error_file_id)
    assert {line["error"]["code"] for line in lines} == {"batch_expired"}
    assert all(line["response"] is None for line in lines)
    for line in result_lines(client, expired.output_file_id):
        check_line_body(CHAT, line)
    recorder.assert_clean()


def test_failed_validation_reports_each_line(
    fast_emulator: EmulatorServer, recorder: SpecRecorder
) -> None:
    client = recorder.client(fast_emulator.base_url)
    good = request_lines("/v1/embeddings", 1)[0]
    bad = [good, {**good, "method": "GET", "custom_id": "g"}, {**good, "custom_id": "r0"}]
    batch = client.batches.create(
        input_file_id=upload(client, bad), endpoint="/v1/embeddings", completion_window="24h"
    )
    failed = wait_for_batch(client, batch.id)
    assert failed.status == "failed" and failed.failed_at is not None
    assert failed.errors is not None and failed.errors.data
    assert {(error.line, error.param) for error in failed.errors.data} >= {
        (2, "method"),
        (3, "custom_id"),
    }
    assert all(error.code and error.message for error in failed.errors.data)
    assert failed.output_file_id is None and failed.error_file_id is None
    assert_known(failed)
    recorder.assert_clean()


def test_list_walks_pages_by_cursor(fast_emulator: EmulatorServer, recorder: SpecRecorder) -> None:
    client = recorder.client(fast_emulator.base_url)
    file_id = upload(client, request_lines("/v1/embeddings", 1))
    created = [
        client.batches.create(
            input_file_id=file_id, endpoint="/v1/embeddings", completion_window="24h"
        ).id
        for _ in range(3)
    ]
    page = client.batches.list(limit=2)
    assert [b.id for b in page.data] == created[::-1][:2] and page.has_more
    second = client.batches.list(limit=2, after=page.data[-1].id)
    assert second.data[0].id == created[0]
    walked = [b.id for b in client.batches.list(limit=2)]
    assert len(walked) == len(set(walked)) and set(created) <= set(walked)
    recorder.assert_clean()


def test_refused_creates(fast_emulator: EmulatorServer, recorder: SpecRecorder) -> None:
    client = recorder.client(fast_emulator.base_url)
    file_id = upload(client, request_lines("/v1/embeddings", 1))
    refusals = [
        {"completion_window": "48h"},
        {"endpoint": "/v1/nothing"},
        {"input_file_id": "file-missing"},
    ]
    for change in refusals:
        args = {
            "input_file_id": file_id,
            "endpoint": "/v1/embeddings",
            "completion_window": "24h",
            **change,
        }
        with pytest.raises(openai.BadRequestError):
            client.batches.create(**args)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError):
        client.batches.list(limit=101)
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_missing")
    with pytest.raises(openai.NotFoundError):
        client.batches.cancel("batch_missing")
    recorder.assert_clean()
