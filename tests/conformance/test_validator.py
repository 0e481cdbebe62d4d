"""The conformance check itself: it passes real shapes and fails broken ones."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from openai.types import Batch

from tests.conformance.sdk_models import parse_strictly
from tests.conformance.spec import (
    ConformanceError,
    find_operation,
    openapi,
    response_schema,
    shared_dir,
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
NULL_FILLED = {
    "output_file_id": None,
    "error_file_id": None,
    "errors": None,
    "completed_at": None,
    "usage": None,
    "model": None,
}
FILE: dict[str, Any] = {
    "id": "file-abc",
    "object": "file",
    "bytes": 120,
    "created_at": 1_700_000_000,
    "filename": "in.jsonl",
    "purpose": "batch",
    "status": "processed",
    "expires_at": None,
    "status_details": None,
}
RESPONSE: dict[str, Any] = {
    "id": "resp_abc",
    "object": "response",
    "created_at": 1_700_000_000,
    "status": "queued",
    "background": True,
    "completed_at": None,
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "max_output_tokens": None,
    "model": "gpt-4o-mini",
    "output": [],
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": None,
    "service_tier": "flex",
    "temperature": 1.0,
    "text": None,
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
    "usage": None,  # null while queued: the spec alone refuses it
    "user": None,
    "metadata": {},
}
ERROR = {"error": {"message": "No such batch", "type": "invalid_request_error", "param": None}}


def test_a_well_formed_batch_passes() -> None:
    validate_component("Batch", BATCH)


def test_null_optional_fields_pass() -> None:
    validate_component("Batch", {**BATCH, **NULL_FILLED})
    validate_component("OpenAIFile", FILE)
    validate_component("Response", RESPONSE)


def test_a_removed_required_field_fails() -> None:
    broken = copy.deepcopy(BATCH)
    del broken["completion_window"]
    with pytest.raises(ConformanceError, match="'completion_window' is a required property"):
        validate_component("Batch", broken)


def test_a_misspelled_status_fails() -> None:
    with pytest.raises(ConformanceError, match="status: 'runing' is not one of"):
        validate_component("Batch", {**BATCH, "status": "runing"})


def test_a_misspelled_optional_enum_fails_and_says_why() -> None:
    # Response.status is optional, so the overlay wraps it in anyOf; the message still
    # names the enum rather than "not valid under any of the given schemas".
    with pytest.raises(ConformanceError, match="status: 'runing' is not one of"):
        validate_component("Response", {**RESPONSE, "status": "runing"})


def test_a_nested_required_field_still_fails() -> None:
    broken = copy.deepcopy(BATCH)
    del broken["request_counts"]["total"]
    with pytest.raises(ConformanceError, match="request_counts: 'total' is a required"):
        validate_component("Batch", broken)


def test_null_is_refused_where_the_field_is_required() -> None:
    with pytest.raises(ConformanceError, match="status: None is not of type"):
        validate_component("Batch", {**BATCH, "status": None})


def test_required_counts_across_an_allof() -> None:
    # Response requires `model` and `tools`, which its allOf member ResponseProperties defines.
    for field in ("model", "tools"):
        with pytest.raises(ConformanceError, match=f"{field}: None is not"):
            validate_component("Response", {**RESPONSE, field: None})
    validate_component("Response", {**RESPONSE, "temperature": None})  # the spec allows null


def test_every_violation_is_listed_with_its_path() -> None:
    broken = {**BATCH, "status": "runing", "created_at": "yesterday"}
    del broken["id"]
    with pytest.raises(ConformanceError) as caught:
        validate_component("Batch", broken)
    lines = str(caught.value).splitlines()[1:]
    assert len(lines) == 3
    assert [line.split(":")[0].strip() for line in lines] == ["<root>", "created_at", "status"]


def test_a_well_formed_response_passes_and_a_broken_one_fails() -> None:
    done = {**RESPONSE, "status": "completed", "completed_at": 1_700_000_012}
    validate_component("Response", done)
    for field in ("output", "model", "tools"):
        with pytest.raises(ConformanceError, match=f"'{field}' is a required property"):
            validate_component("Response", {k: v for k, v in done.items() if k != field})
    with pytest.raises(ConformanceError, match="error"):
        validate_component("Response", {**done, "error": {"code": "oops", "message": "x"}})


def test_files_lists_and_errors_by_route() -> None:
    validate_response("GET", "/v1/files/file-abc", 200, FILE)
    files = {"object": "list", "data": [FILE], "first_id": "file-abc", "last_id": "file-abc"}
    validate_response("GET", "/v1/files", 200, {**files, "has_more": False})
    with pytest.raises(ConformanceError, match="has_more"):
        validate_response("GET", "/v1/files", 200, files)
    batches = {"object": "list", "data": [BATCH], "first_id": "batch_abc", "has_more": False}
    validate_response("GET", "/v1/batches", 200, batches)
    with pytest.raises(ConformanceError, match="data/0: 'status' is a required property"):
        broken = {k: v for k, v in BATCH.items() if k != "status"}
        validate_response("GET", "/v1/batches", 200, {**batches, "data": [broken]})
    validate_response("DELETE", "/v1/files/f", 200, {"id": "f", "object": "file", "deleted": True})
    with pytest.raises(ConformanceError):
        validate_component("OpenAIFile", {"id": "file-abc", "object": "file"})


def test_error_bodies() -> None:
    found = {"error": {**ERROR["error"], "code": None}}
    for status in (400, 401, 404, 429, 500):
        validate_response("GET", "/v1/batches/batch_x", status, found)
    with pytest.raises(ConformanceError, match="'code' is a required property"):
        validate_response("GET", "/v1/batches/batch_x", 404, ERROR)
    with pytest.raises(ConformanceError, match="'error' is a required property"):
        validate_response("POST", "/v1/responses", 400, {"detail": "Not Found"})


def test_routes_match_the_most_specific_template() -> None:
    assert find_operation("GET", "/v1/batches/batch_1").template == "/batches/{batch_id}"
    assert find_operation("POST", "/v1/batches/b/cancel").template == "/batches/{batch_id}/cancel"
    assert find_operation("POST", "/v1/responses/compact").template == "/responses/compact"
    assert find_operation("POST", "/responses/resp_1/cancel").template.endswith("/cancel")
    assert response_schema("GET", "/v1/files/file-1/content", 200) is None  # raw bytes
    with pytest.raises(ConformanceError, match="no operation"):
        find_operation("GET", "/v1/nothing/here")


def test_batch_input_lines() -> None:
    line = {"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions", "body": {}}
    validate_batch_input_line(line)
    with pytest.raises(ConformanceError, match="'GET' is not one of"):
        validate_batch_input_line({**line, "method": "GET"})
    with pytest.raises(ConformanceError, match="'custom_id' is a required property"):
        validate_batch_input_line({k: v for k, v in line.items() if k != "custom_id"})


def test_batch_output_lines() -> None:
    ok_response = {"status_code": 200, "request_id": "req_1", "body": {"object": "list"}}
    validate_batch_output_line(
        {"id": "b1", "custom_id": "r1", "response": ok_response, "error": None}
    )
    expired = {"code": "batch_expired", "message": "The window expired."}
    validate_batch_output_line({"id": "b2", "custom_id": "r2", "response": None, "error": expired})
    with pytest.raises(ConformanceError, match="response/status_code: '200' is not of type"):
        bad = {**ok_response, "status_code": "200"}
        validate_batch_output_line({"id": "b", "custom_id": "r1", "response": bad, "error": None})
    with pytest.raises(ConformanceError, match="'custom_id' is a required property"):
        validate_batch_output_line({"id": "b", "response": None, "error": expired})
    with pytest.raises(ConformanceError, match="error: 'message' is a required property"):
        validate_batch_output_line(
            {"id": "b", "custom_id": "r", "response": None, "error": {"code": "x"}}
        )


def test_the_sdk_types_catch_misspelled_optional_keys() -> None:
    # The spec leaves objects open, so only the SDK's models notice `ouput_file_id`.
    validate_component("Batch", {**BATCH, "ouput_file_id": "file-x"})
    parse_strictly(Batch, BATCH)
    with pytest.raises(AssertionError, match="ouput_file_id"):
        parse_strictly(Batch, {**BATCH, "ouput_file_id": "file-x"})


def test_the_spec_is_the_pinned_one_and_its_json_copy_matches() -> None:
    source = (shared_dir() / "openai-openapi" / "SOURCE.txt").read_text()
    assert openapi()["openapi"] == "3.1.0" and openapi()["info"]["version"] in source
    assert json.loads(json.dumps(openapi()))["components"]["schemas"]["Batch"]["required"]
