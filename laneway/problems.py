"""Validation problems as people read them: where, and what is wrong, in plain words.

pydantic's own messages can name a model class ("Input should be a valid dictionary or
instance of JobInput") and its locations can name union members; neither means anything to
the person who sent the input. Every surface that reports a validation error (the CLI, the
HTTP API, settings) words it through here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from pydantic import ValidationError
from pydantic_core import ErrorDetails

# Error types whose message names a class: said without it.
_PLAIN_MESSAGES: Final = {
    "model_type": "Input should be an object",
    "model_attributes_type": "Input should be an object",
    "dataclass_type": "Input should be an object",
    "dataclass_exact_type": "Input should be an object",
    "is_instance_of": "Input is not of the expected kind",
    "is_subclass_of": "Input is not of the expected kind",
}
_PREFIXES: Final = ("Value error, ", "Assertion failed, ")
# A location part that is not a field: a model or union member name, or a validator's tag
# such as `function-after[_check(), JobSpec]`.
_NOT_A_FIELD: Final = re.compile(r"^[A-Z]\w*$|[\[\]()]")


def problem_message(problem: ErrorDetails) -> str:
    """What is wrong, without class names and without pydantic's `Value error, ` prefix."""
    plain = _PLAIN_MESSAGES.get(problem["type"])
    if plain is not None:
        return plain
    message = problem["msg"]
    for prefix in _PREFIXES:
        message = message.removeprefix(prefix)
    return message


def problem_location(location: Sequence[int | str]) -> list[int | str]:
    """The field path: names and list indexes, without model or union member names."""
    return [part for part in location if isinstance(part, int) or not _NOT_A_FIELD.search(part)]


def describe(error: ValidationError) -> str:
    """Every problem as `field.path: what is wrong`, joined with `; `."""
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem_location(problem["loc"]))
        message = problem_message(problem)
        lines.append(f"{where}: {message}" if where else message)
    return "; ".join(lines)
