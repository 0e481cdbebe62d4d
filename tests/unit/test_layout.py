"""Imports point the way DESIGN.md's layout says, read from every module's own `import` lines.

    client/, dev/, workers/  may import any package, workflows included
    workflows/   laneway only (and Temporal, pydantic, the standard library): never activities,
                 store or anything with I/O; they call activities by name
    activities/  store and laneway; never workflows, client, dev or workers
    store/       laneway only
    laneway/     none of the project's other packages: the domain stands alone
    emulator/    nothing of the project: it stands alone as a provider would

Every import counts, also one under `TYPE_CHECKING` or inside a function: each is a place
where one folder leans on another.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[2]
PACKAGES: Final = (
    "laneway",
    "workflows",
    "activities",
    "store",
    "workers",
    "client",
    "dev",
    "emulator",
)
# For each package, the project packages it may import besides itself.
MAY_IMPORT: Final[dict[str, frozenset[str]]] = {
    "client": frozenset(PACKAGES),
    "dev": frozenset(PACKAGES),
    "workers": frozenset(PACKAGES),
    "workflows": frozenset({"laneway"}),
    "activities": frozenset({"store", "laneway"}),
    "store": frozenset({"laneway"}),
    "laneway": frozenset(),
    "emulator": frozenset(),
}
# Workflow code runs in Temporal's sandbox, deterministic: no library that does I/O.
WORKFLOW_LIBRARIES: Final = frozenset({"temporalio", "pydantic", "pydantic_core"})


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    module: str

    @property
    def top(self) -> str:
        return self.module.split(".")[0]

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line} imports {self.module}"


def imports_of(package: str, root: Path = ROOT) -> Iterator[Import]:
    """Every absolute import in the package's modules; a relative one stays in the package."""
    for path in sorted((root / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(path, node.lineno, alias.name)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield Import(path, node.lineno, node.module)


def wrong_imports(package: str, root: Path = ROOT) -> list[Import]:
    """The package's imports of project packages its rule does not allow."""
    allowed = MAY_IMPORT[package] | {package}
    return [
        found
        for found in imports_of(package, root)
        if found.top in PACKAGES and found.top not in allowed
    ]


def test_every_package_is_checked() -> None:
    found = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests"}
    assert found == set(PACKAGES), "a new top-level package needs its rule in MAY_IMPORT"


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_one_way(package: str) -> None:
    wrong = [str(found) for found in wrong_imports(package)]
    assert wrong == [], f"{package}/ may import only {sorted(MAY_IMPORT[package])} of the project"


def test_workflows_import_only_the_domain_temporal_pydantic_and_the_standard_library() -> None:
    allowed = WORKFLOW_LIBRARIES | {"workflows", "laneway", "__future__"}
    wrong = [
        str(found)
        for found in imports_of("workflows")
        if found.top not in allowed and found.top not in sys.stdlib_module_names
    ]
    assert wrong == []


def test_the_rules_see_every_kind_of_import(tmp_path: Path) -> None:
    """Nested, under TYPE_CHECKING, aliased: each is found; a relative one stays home."""
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "sample.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import store.ledger as ledger\n"
        "from laneway.batch import BatchProgress\n"
        "if TYPE_CHECKING:\n"
        "    from activities.batches import BatchProviderActivities\n"
        "def later() -> None:\n"
        "    from . import sibling\n"
        "    import client.jobs, workflows.job_common\n"
    )
    wrong = [(found.line, found.module) for found in wrong_imports("workflows", tmp_path)]
    assert sorted(wrong) == [(2, "store.ledger"), (5, "activities.batches"), (8, "client.jobs")]
