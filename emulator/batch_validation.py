"""Validation of a batch input file, as OpenAI runs it while a batch is `validating`.

Every line is checked; problems become batch-level errors with 1-based line numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.batch_model import SUPPORTED_ENDPOINTS, BatchLine
from emulator.synth import embedding_input_count

MAX_REPORTED_ERRORS = 1000


@dataclass
class Validation:
    lines: list[BatchLine] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None

    def error(self, code: str, message: str, line: int | None, param: str | None = None) -> None:
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"code": code, "message": message, "param": param, "line": line})


@dataclass(frozen=True)
class Limits:
    max_requests: int
    max_embedding_inputs: int


def validate_file(path: Path, endpoint: str, limits: Limits) -> Validation:
    result = Validation()
    if endpoint not in SUPPORTED_ENDPOINTS:
        result.error(
            "unsupported_endpoint",
            f"The endpoint {endpoint} is not supported by the Laneway emulator.",
            None,
            "endpoint",
        )
        return result
    seen: set[str] = set()
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                _check_line(raw, number, endpoint, seen, result)
    _check_totals(result, endpoint, limits)
    return result


def _check_line(raw: bytes, number: int, endpoint: str, seen: set[str], result: Validation) -> None:
    try:
        item = json.loads(raw)
    except ValueError:
        item = None
    if not isinstance(item, dict):
        result.error("invalid_json_line", "This line is not parseable as valid JSON.", number)
        return
    problems_before = len(result.errors)
    custom_id = _check_custom_id(item, number, seen, result)
    _check_request(item, number, endpoint, result)
    body = item.get("body")
    if custom_id is not None and isinstance(body, dict) and len(result.errors) == problems_before:
        result.lines.append(BatchLine(custom_id, body))


def _check_custom_id(
    item: dict[str, Any], number: int, seen: set[str], result: Validation
) -> str | None:
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        result.error(
            "missing_required_parameter",
            "Missing required parameter: 'custom_id'.",
            number,
            "custom_id",
        )
        return None
    if custom_id in seen:
        result.error(
            "duplicate_custom_id",
            f"The custom_id '{custom_id}' is a duplicate of another request in this batch. "
            "The custom_id parameter must be unique for each request in a batch.",
            number,
            "custom_id",
        )
        return None
    seen.add(custom_id)
    return custom_id


def _check_request(item: dict[str, Any], number: int, endpoint: str, result: Validation) -> None:
    method = item.get("method")
    if method != "POST":
        result.error(
            "invalid_method",
            f"Invalid method {method!r}: only POST is supported.",
            number,
            "method",
        )
    url = item.get("url")
    if url != endpoint:
        result.error(
            "invalid_url",
            f"The URL {url!r} does not match the batch's endpoint {endpoint}.",
            number,
            "url",
        )
    body = item.get("body")
    if not isinstance(body, dict):
        result.error("invalid_request", "The request body must be a JSON object.", number, "body")
        return
    _check_model(body.get("model"), number, result)


def _check_model(model: Any, number: int, result: Validation) -> None:
    if not isinstance(model, str) or not model:
        result.error(
            "missing_required_parameter",
            "Missing required parameter: 'body.model'.",
            number,
            "body.model",
        )
    elif result.model is None:
        result.model = model
    elif model != result.model:
        result.error(
            "mismatched_model",
            f"The model {model!r} does not match the model {result.model!r} of the first "
            "request. Every request in a batch must use the same model.",
            number,
            "body.model",
        )


def _check_totals(result: Validation, endpoint: str, limits: Limits) -> None:
    if not result.lines and not result.errors:
        result.error("empty_file", "The input file contains no requests.", None)
    count = len(result.lines)
    if count > limits.max_requests:
        result.error(
            "too_many_requests",
            f"The batch input file has {count} requests; the maximum is {limits.max_requests}.",
            None,
        )
    if endpoint == "/v1/embeddings":
        inputs = sum(embedding_input_count(line.body) for line in result.lines)
        if inputs > limits.max_embedding_inputs:
            result.error(
                "too_many_embedding_inputs",
                f"The batch has {inputs} embedding inputs; the maximum is "
                f"{limits.max_embedding_inputs}.",
                None,
            )
