"""What the SDK's typed models make of an answer: keys it does not know are likely typos.

The spec leaves objects open (no `additionalProperties: false`), so a misspelled optional key
(`ouput_file_id`) passes it silently. The SDK is newer than the spec and keeps unknown keys in
`model_extra`, so a key neither knows shows up there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

from openai import BaseModel

# Keys the real API sends that neither the spec nor SDK 3.54.0 declares: Response `billing`
# ({"payer": "developer"}) and `store` appear in real answers (community.openai.com thread
# "Responses API: new field in return, billing", 2025-10), so the emulator may send them.
REAL_API_EXTRAS: dict[str, frozenset[str]] = {"Response": frozenset({"billing", "store"})}

M = TypeVar("M", bound=BaseModel)


def unknown_fields(model: BaseModel, path: str = "") -> Iterator[str]:
    """Dotted paths of every key, at any depth, that the SDK model does not declare."""
    allowed = REAL_API_EXTRAS.get(type(model).__name__, frozenset()) if not path else frozenset()
    for key in (model.model_extra or {}).keys() - allowed:
        yield f"{path}{key}"
    for name in type(model).model_fields:
        yield from _walk(getattr(model, name), f"{path}{name}.")


def _walk(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, BaseModel):
        yield from unknown_fields(value, path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}{index}.")


def parse_strictly(model_type: type[M], body: object) -> M:
    """Validate `body` into the SDK type (the SDK itself only constructs), no unknown keys."""
    model = model_type.model_validate(body)
    unknown = sorted(unknown_fields(model))
    assert not unknown, f"{model_type.__name__}: keys the SDK does not know: {unknown}"
    return model


def assert_known(model: BaseModel) -> None:
    """For an object the SDK returned: every key it received is one it declares."""
    unknown = sorted(unknown_fields(model))
    assert not unknown, f"{type(model).__name__}: keys the SDK does not know: {unknown}"
