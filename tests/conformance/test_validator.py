"""The conformance check itself: it passes real shapes and fails broken ones."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.conformance.spec import (
    ConformanceError,
    validate_batch_input_line,
    validate_batch_output_line,
    validate_component,
    validate_response,
)

BATCH: dict[str, Any] = {
    "id": "batch_abc",
    "object": "batch",
    "endpoint": "/v1/chat/completions",
    "input_file_id": "file-abc",
    "completion_window": "24h",
    "status": "in_progress",
    "created_at": 1_700_000_000,
    "in_progress_at": 1_700_000_010,
    "expires_at": 1_700_086_400,
    "request_counts": {"total": 10, "completed": 4, "failed": 1},
    "metadata": {"job": "j1"},
}
# Optional fields the real API sends as null, which the spec alone would refuse.
NULL_FILLED = {"output_file_id": None, "error_file_id": None, "errors": None, "completed_at": None}


def test_a_well_formed_batch_passes() -> None:
    validate_component("Batch", BATCH)


def test_null_optional_fields_pass() -> None:
    validate_component("Batch", {**BATCH, **NULL_FILLED})


def test_a_removed_required_field_fails() -> None:
    broken = copy.deepcopy(BATCH)
    del broken["completion_window"]
    with pytest.raises(ConformanceError, match="'completion_window' is a required property"):
        validate_component("Batch", broken)


def test_a_misspelled_status_fails() -> None:
    with pytest.raises(ConformanceError, match="'runing' is not one of"):
        validate_component("Batch", {**BATCH, "status": "runing"})


def test_a_nested_required_field_still_fails() -> None:
    broken = copy.deepcopy(BATCH)
    del broken["request_counts"]["total"]
    with pytest.raises(ConformanceError, match="request_counts"):
        validate_component("Batch", broken)


def test_null_is_refused_where_the_field_is_required() -> None:
    with pytest.raises(ConformanceError, match="status"):
        validate_component("Batch", {**BATCH, "status": None})


def test_file_and_error_shapes() -> None:
    validate_component(
        "OpenAIFile",
        {
            "id": "file-abc",
            "object": "file",
            "bytes": 120,
            "created_at": 1_700_000_000,
            "filename": "in.jsonl",
            "purpose": "batch",
            "status": "processed",
            "expires_at": None,
        },
    )
    detail = {"message": "No such batch", "type": "invalid_request_error", "param": None}
    validate_response("GET", "/v1/batches/batch_x", 404, {"error": {**detail, "code": None}})
    with pytest.raises(ConformanceError):
        validate_component("OpenAIFile", {"id": "file-abc", "object": "file"})
    with pytest.raises(ConformanceError):
        validate_response("GET", "/v1/batches/batch_x", 404, {"error": detail})  # no code


def test_list_bodies_by_route() -> None:
    listing = {"object": "list", "data": [BATCH], "first_id": "batch_abc", "has_more": False}
    validate_response("GET", "/v1/batches", 200, listing)
    with pytest.raises(ConformanceError, match="has_more"):
        validate_response("GET", "/v1/batches", 200, {"object": "list", "data": []})


def test_batch_lines() -> None:
    validate_batch_input_line(
        {"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions", "body": {}}
    )
    validate_batch_output_line(
        {"id": "batch_req_1", "custom_id": "r1", "response": None, "error": {"code": "x"}}
    )
    with pytest.raises(ConformanceError, match="'GET' is not one of"):
        validate_batch_input_line({"custom_id": "r1", "method": "GET", "url": "/v1/embeddings"})
    with pytest.raises(ConformanceError, match="status_code"):
        validate_batch_output_line(
            {"id": "b", "custom_id": "r1", "response": {"status_code": "200"}, "error": None}
        )
