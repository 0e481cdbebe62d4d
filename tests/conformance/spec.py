"""OpenAI's published OpenAPI spec as a validator for what the emulator sends.

The spec marks optional fields as non-nullable while the real API sends `null` for them (and
the SDK types them `Optional`), so an overlay lets every property that is not `required` also
be null. A misspelled enum value or a missing required field still fails.
"""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_URI = "urn:spec"
LINES_URI = "urn:batch-lines"


def shared_dir() -> Path:
    """`../shared` beside the repository, or `LANEWAY_SHARED_DIR`."""
    override = os.environ.get("LANEWAY_SHARED_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2].parent / "shared"


def allow_null_when_optional(node: Any) -> Any:
    """Wrap every property outside its schema's `required` list in `anyOf [orig, null]`."""
    if isinstance(node, list):
        return [allow_null_when_optional(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: allow_null_when_optional(value) for key, value in node.items()}
    properties = result.get("properties")
    if isinstance(properties, dict):
        required = set(result.get("required", []))
        result["properties"] = {
            name: schema if name in required else {"anyOf": [schema, {"type": "null"}]}
            for name, schema in properties.items()
        }
    return result


def nullable_to_type(node: Any) -> Any:
    """OAS 3.0 `nullable: true` (the 2025-04 line schemas) as JSON Schema's null type."""
    if isinstance(node, list):
        return [nullable_to_type(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: nullable_to_type(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [result, {"type": "null"}]}
    return result


@cache
def openapi() -> dict[str, Any]:
    text = (shared_dir() / "openai-openapi" / "openapi.yaml").read_text()
    loaded: dict[str, Any] = yaml.load(text, Loader=yaml.CSafeLoader)
    return loaded


@cache
def batch_line_schemas() -> dict[str, Any]:
    path = shared_dir() / "openai-openapi" / "batch-line-schemas.2025-04.json"
    raw = json.loads(path.read_text())
    return {name: nullable_to_type(schema) for name, schema in raw.items() if name[0] != "_"}


@cache
def registry() -> Registry[Any]:
    spec = allow_null_when_optional(copy.deepcopy(openapi()))
    lines = {"components": {"schemas": batch_line_schemas()}}
    return Registry().with_resources(
        [
            (SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012)),
            (LINES_URI, Resource.from_contents(lines, default_specification=DRAFT202012)),
        ]
    )


class ConformanceError(AssertionError):
    """An object broke the spec; the message lists every violation with its path."""


def violations(schema: dict[str, Any], instance: object) -> list[str]:
    validator = Draft202012Validator(schema, registry=registry())
    return [
        f"{'/'.join(str(part) for part in error.absolute_path) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    ]


def _check(schema: dict[str, Any], instance: object, what: str) -> None:
    found = violations(schema, instance)
    if found:
        raise ConformanceError(f"{what} breaks the spec:\n  " + "\n  ".join(found))


def validate_component(name: str, instance: object) -> None:
    """Validate against `#/components/schemas/<name>` of the OpenAPI spec (with the overlay)."""
    _check({"$ref": f"{SPEC_URI}#/components/schemas/{name}"}, instance, name)


def validate_batch_input_line(line: object) -> None:
    _check({"$ref": f"{LINES_URI}#/components/schemas/BatchRequestInput"}, line, "input line")


def validate_batch_output_line(line: object) -> None:
    _check({"$ref": f"{LINES_URI}#/components/schemas/BatchRequestOutput"}, line, "output line")


@dataclass(frozen=True)
class Operation:
    template: str
    method: str
    pattern: re.Pattern[str]


@cache
def operations() -> tuple[Operation, ...]:
    found = []
    for template, item in openapi()["paths"].items():
        if "?" in template:
            continue  # the spec's duplicate `?beta=true` paths
        pattern = re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$")
        found += [Operation(template, method, pattern) for method in item if method != "parameters"]
    return tuple(found)


def find_operation(method: str, path: str) -> Operation:
    """The spec operation for a request to `path` (with or without the `/v1` prefix)."""
    bare = path.removeprefix("/v1")
    for operation in operations():
        if operation.method == method.lower() and operation.pattern.match(bare):
            return operation
    raise ConformanceError(f"no operation in the spec for {method} {path}")


def response_schema(method: str, path: str, status: int) -> dict[str, Any] | None:
    """The JSON schema the spec gives for this answer; error statuses use ErrorResponse."""
    if status >= 400:
        return {"$ref": f"{SPEC_URI}#/components/schemas/ErrorResponse"}
    operation = find_operation(method, path)
    responses = openapi()["paths"][operation.template][operation.method]["responses"]
    answer = responses.get(str(status)) or responses.get("default") or {}
    schema = answer.get("content", {}).get("application/json", {}).get("schema")
    if schema is None or schema == {"type": "string"}:
        return None  # raw content (file downloads): nothing to validate as JSON
    return {
        "$ref": f"{SPEC_URI}#/paths/{_escape(operation.template)}/{operation.method}"
        f"/responses/{status}/content/application~1json/schema"
    }


def _escape(template: str) -> str:
    return template.replace("~", "~0").replace("/", "~1")


def validate_response(method: str, path: str, status: int, body: object) -> None:
    schema = response_schema(method, path, status)
    if schema is not None:
        _check(schema, body, f"{method} {path} -> {status}")
