"""The typed activity definitions workflows call match what the worker registers.

Workflows pass `workflows.activity_types` functions to `execute_activity`, so mypy checks their
arguments and results; this test keeps those definitions honest against the implementations
in activities/ (same names, same argument and result types), and checks that workflows never
call an activity by a bare name.
"""

from __future__ import annotations

import ast
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity

import workflows
from laneway.settings import Settings
from workers.main import build_activities
from workflows import activity_types

WORKFLOWS_DIR = Path(workflows.__file__).parent


def definitions() -> dict[str, Callable[..., Any]]:
    found = {}
    for _, function in inspect.getmembers(activity_types, inspect.iscoroutinefunction):
        definition = activity._Definition.from_callable(function)
        if definition is not None and definition.name is not None:
            found[definition.name] = function
    return found


def registered(tmp_path: Path) -> dict[str, Callable[..., Any]]:
    settings = Settings(data_dir=tmp_path, openai_api_key="test-key")
    found = {}
    for function in build_activities(settings):
        definition = activity._Definition.from_callable(function)
        assert definition is not None and definition.name is not None
        found[definition.name] = function
    return found


def signature(function: Callable[..., Any]) -> tuple[list[Any], Any]:
    hints = typing.get_type_hints(function)
    returned = hints.pop("return")
    return list(hints.values()), returned


def test_every_definition_is_registered_with_the_same_types(tmp_path: Path) -> None:
    defined, implemented = definitions(), registered(tmp_path)
    assert set(defined) == set(implemented), "a definition without an implementation or back"
    for name, definition in defined.items():
        assert signature(definition) == signature(implemented[name]), name


@pytest.mark.parametrize("module", sorted(WORKFLOWS_DIR.glob("*.py")), ids=lambda p: p.name)
def test_workflows_call_activities_by_definition_not_by_name(module: Path) -> None:
    tree = ast.parse(module.read_text())
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("execute_activity", "start_activity")
            and node.args
        ):
            first = node.args[0]
            by_name = isinstance(first, ast.Constant) or (
                isinstance(first, ast.Name) and first.id.isupper()
            )
            assert not by_name, f"{module.name}:{node.lineno} calls an activity by its name"
