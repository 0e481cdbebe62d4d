"""What a message to a person must not contain: the name of a class, ours or a library's.

`internal_names(message)` lists the CamelCase words in a message that name a class of the
project or of the SDKs it uses (Temporal, pydantic, OpenAI, SQLAlchemy, FastAPI), an exception
of Python's, or an error type the workflows raise (e.g. `ActionForbidden`), plus any CamelCase
word ending in Error or Exception and any traceback.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import inspect
import re
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES: Final = (
    "laneway",
    "workflows",
    "activities",
    "store",
    "workers",
    "client",
    "dev",
    "emulator",
)
SDK_MODULES: Final = (
    "temporalio.client",
    "temporalio.common",
    "temporalio.exceptions",
    "temporalio.service",
    "temporalio.worker",
    "pydantic",
    "pydantic_core",
    "pydantic_settings",
    "openai",
    "sqlalchemy.exc",
    "fastapi",
    "fastapi.exceptions",
    "starlette.exceptions",
    "httpx",
    "json",
)
CAMEL_CASE: Final = re.compile(r"\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)+\b")
ERROR_WORD: Final = re.compile(r"\b[A-Z]\w*(?:Error|Exception)\b")


def _project_names() -> set[str]:
    """Every class the project defines, and every CamelCase string constant (error types)."""
    names: set[str] = set()
    for package in PROJECT_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ClassDef):
                    names.add(node.name)
                elif (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and CAMEL_CASE.fullmatch(node.value)
                ):
                    names.add(node.value)
    return names


def _library_names() -> set[str]:
    names = {
        name
        for name, value in vars(builtins).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    }
    for module_name in SDK_MODULES:
        module = importlib.import_module(module_name)
        names.update(name for name, _ in inspect.getmembers(module, inspect.isclass))
    return names


@functools.cache
def known_names() -> frozenset[str]:
    return frozenset(name for name in _project_names() | _library_names() if len(name) > 3)


def internal_names(message: str) -> list[str]:
    """The class names (and error types) `message` shows, in order; [] for a plain message."""
    found = [word for word in CAMEL_CASE.findall(message) if word in known_names()]
    found += [word for word in ERROR_WORD.findall(message) if word not in found]
    if "Traceback" in message:
        found.append("Traceback")
    return found
