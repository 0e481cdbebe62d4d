"""OpenAI's published OpenAPI spec as a validator for what the emulator sends.

The spec marks optional fields as non-nullable while the real API sends `null` for them (and
the SDK types them `Optional`), so an overlay lets every property that is not `required` also
be null. A misspelled enum value or a missing required field still fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_URI = "urn:spec"
LINES_URI = "urn:batch-lines"
JSON = "application/json"
# The 2025-04 line schemas list no `required` fields at all, so `{}` would pass them. These are
# the keys every real line carries (contract section 1); they make a dropped key a violation.
LINE_REQUIRED: dict[str, list[str]] = {
    "BatchRequestInput": ["custom_id", "method", "url", "body"],
    "BatchRequestOutput": ["id", "custom_id", "response", "error"],
    "BatchRequestOutput/response": ["status_code", "request_id", "body"],
    "BatchRequestOutput/error": ["code", "message"],
}


class ConformanceError(AssertionError):
    """An object broke the spec; the message lists every violation with its path."""


def repo_root() -> Path:
    here = Path(__file__).resolve()
    return next(p for p in here.parents if (p / "pyproject.toml").exists())


def shared_dir() -> Path:
    """`../shared` beside the repository, or `LANEWAY_SHARED_DIR`."""
    override = os.environ.get("LANEWAY_SHARED_DIR")
    return Path(override) if override else repo_root().parent / "shared"


def spec_path() -> Path:
    return shared_dir() / "openai-openapi" / "openapi.yaml"


# --- loading -----------------------------------------------------------------------------------


def cache_dir() -> Path:
    """`var/spec-cache` in the repository (git-ignored), or a temp dir if that is read-only."""
    for candidate in (repo_root() / "var" / "spec-cache", Path(tempfile.gettempdir())):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(candidate, os.W_OK):
            return candidate
    raise RuntimeError("no writable directory for the spec cache")


@cache
def openapi() -> dict[str, Any]:
    """The spec as data. YAML parsing takes ~1.2 s (libyaml); the JSON copy, keyed by the
    spec's sha256 so an updated spec is never served stale, loads in ~0.05 s."""
    raw = spec_path().read_bytes()
    cached = cache_dir() / f"openapi-{hashlib.sha256(raw).hexdigest()}.json"
    if cached.exists():
        loaded: dict[str, Any] = json.loads(cached.read_bytes())
        return loaded
    loaded = yaml.load(raw, Loader=yaml.CSafeLoader)
    # default=str: one `example` holds an unquoted date; no schema keyword does.
    text = json.dumps(loaded, default=str)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(text)
    partial.replace(cached)  # atomic: a concurrent run reads the old or the whole new file
    result: dict[str, Any] = json.loads(text)
    return result


# --- overlays ----------------------------------------------------------------------------------


COMPONENT_REF = "#/components/schemas/"


def allow_null_when_optional(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with every property outside its object's `required` list wrapped in
    `anyOf [orig, null]`, through every nested schema (properties, items, allOf/anyOf/oneOf).

    `required` counts across an allOf: Response lists `model` as required while `model` is
    defined in its `ResponseProperties` member, so `$ref` members of an allOf are inlined and
    told what the whole object requires; otherwise `"model": null` would pass.
    """
    result: dict[str, Any] = _Overlay(spec["components"]["schemas"]).node(spec, frozenset())
    return result


def _required(node: Any) -> frozenset[str]:
    """A schema's `required` names (an OpenAPI parameter's `required: true` is no list)."""
    names = node.get("required") if isinstance(node, dict) else None
    return frozenset(names) if isinstance(names, list) else frozenset()


@dataclass
class _Overlay:
    components: dict[str, Any]

    def node(self, node: Any, required: frozenset[str], inlined: tuple[str, ...] = ()) -> Any:
        """`required`: names the instance this schema describes must have (from an
        enclosing allOf/anyOf/oneOf); `inlined`: components inlined on the way, against loops."""
        if isinstance(node, list):
            return [self.node(item, frozenset(), inlined) for item in node]
        if not isinstance(node, dict):
            return node
        required |= _required(node)
        for member in node.get("allOf", []):
            required |= _required(member)
        result: dict[str, Any] = {}
        for key, value in node.items():
            if key == "allOf":
                result[key] = [self._member(m, required, inlined) for m in value]
            elif key in ("anyOf", "oneOf"):
                result[key] = [self.node(m, required, inlined) for m in value]
            else:
                result[key] = self.node(value, frozenset(), inlined)
        properties = result.get("properties")
        if isinstance(properties, dict):
            result["properties"] = {
                name: schema if name in required else {"anyOf": [schema, {"type": "null"}]}
                for name, schema in properties.items()
            }
        return result

    def _member(self, member: Any, required: frozenset[str], inlined: tuple[str, ...]) -> Any:
        ref = member.get("$ref", "") if isinstance(member, dict) else ""
        name = ref.removeprefix(COMPONENT_REF)
        if ref.startswith(COMPONENT_REF) and name not in inlined and len(member) == 1:
            return self.node(self.components[name], required, (*inlined, name))
        return self.node(member, required, inlined)


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
def batch_line_schemas() -> dict[str, Any]:
    path = shared_dir() / "openai-openapi" / "batch-line-schemas.2025-04.json"
    raw = json.loads(path.read_text())
    schemas = {name: schema for name, schema in raw.items() if not name.startswith("_")}
    for where, fields in LINE_REQUIRED.items():
        name, _, prop = where.partition("/")
        target = schemas[name]["properties"][prop] if prop else schemas[name]
        target["required"] = fields
    return {name: nullable_to_type(schema) for name, schema in schemas.items()}


@cache
def registry() -> Registry[Any]:
    spec = allow_null_when_optional(openapi())
    lines = {"components": {"schemas": batch_line_schemas()}}
    return Registry().with_resources(
        [
            (SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012)),
            (LINES_URI, Resource.from_contents(lines, default_specification=DRAFT202012)),
        ]
    )


# --- validation --------------------------------------------------------------------------------


def _closest(error: ValidationError) -> ValidationError:
    """The innermost reason behind an anyOf/oneOf failure, ignoring the overlay's null branch
    (otherwise the "closest" reason is always "not of type 'null'")."""
    while error.context:
        options = [e for e in error.context if (e.validator, e.validator_value) != ("type", "null")]
        if not options:
            break
        error = best_match(options)
    return error


def _describe(error: ValidationError) -> str:
    reason = _closest(error)
    path = "/".join(str(part) for part in reason.absolute_path) or "<root>"
    return f"{path}: {reason.message}"


def violations(schema: dict[str, Any], instance: object) -> list[str]:
    """Every violation of `schema` by `instance`, one readable line each, sorted by path."""
    validator = Draft202012Validator(schema, registry=registry())
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.path])
    return [_describe(error) for error in errors]


def check(schema: dict[str, Any], instance: object, what: str) -> None:
    found = violations(schema, instance)
    if found:
        raise ConformanceError(f"{what} breaks the spec:\n  " + "\n  ".join(found))


def component(name: str) -> dict[str, Any]:
    if name not in openapi()["components"]["schemas"]:
        raise KeyError(f"no schema {name!r} in the spec's components")
    return {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}


def validate_component(name: str, instance: object) -> None:
    """Validate against `#/components/schemas/<name>` of the OpenAPI spec (with the overlay)."""
    check(component(name), instance, name)


def validate_batch_input_line(line: object) -> None:
    check({"$ref": f"{LINES_URI}#/components/schemas/BatchRequestInput"}, line, "input line")


def validate_batch_output_line(line: object) -> None:
    check({"$ref": f"{LINES_URI}#/components/schemas/BatchRequestOutput"}, line, "output line")


# --- routes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    template: str
    method: str
    pattern: re.Pattern[str]

    @property
    def specificity(self) -> tuple[int, int]:
        """Fewer `{param}` segments first: `/responses/compact` beats `/responses/{id}`."""
        return self.template.count("{"), -len(self.template)


@cache
def operations() -> tuple[Operation, ...]:
    found = []
    for template, item in openapi()["paths"].items():
        if "?" in template:
            continue  # the spec's duplicate `?beta=true` paths
        pattern = re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$")
        found += [Operation(template, method, pattern) for method in item if method != "parameters"]
    return tuple(sorted(found, key=lambda op: op.specificity))


def find_operation(method: str, path: str) -> Operation:
    """The spec operation for a request to `path` (with or without the `/v1` prefix)."""
    bare = path.removeprefix("/v1")
    for operation in operations():
        if operation.method == method.lower() and operation.pattern.match(bare):
            return operation
    raise ConformanceError(f"no operation in the spec for {method} {path}")


def response_schema(method: str, path: str, status: int) -> dict[str, Any] | None:
    """The JSON schema the spec gives for this answer, or None for raw content.

    Error statuses use `ErrorResponse`: the spec documents few of them per operation, and the
    contract says every HTTP error carries that body.
    """
    if status >= 400:
        return component("ErrorResponse")
    operation = find_operation(method, path)
    responses = openapi()["paths"][operation.template][operation.method]["responses"]
    key = str(status) if str(status) in responses else "default"
    schema = responses.get(key, {}).get("content", {}).get(JSON, {}).get("schema")
    if schema is None or schema == {"type": "string"}:
        return None  # file downloads: the spec's "JSON string" is really raw bytes
    pointer = f"/paths/{_escape(operation.template)}/{operation.method}/responses/{key}"
    return {"$ref": f"{SPEC_URI}#{pointer}/content/application~1json/schema"}


def _escape(template: str) -> str:
    return template.replace("~", "~0").replace("/", "~1")


def validate_response(method: str, path: str, status: int, body: object) -> None:
    """Validate an HTTP answer's JSON body against its route's schema in the spec."""
    schema = response_schema(method, path, status)
    if schema is not None:
        check(schema, body, f"{method} {path} -> {status}")
