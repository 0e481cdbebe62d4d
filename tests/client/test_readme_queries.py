"""The Web UI queries the README gives operators are valid on a real Temporal server."""

from __future__ import annotations

import re
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

README = Path(__file__).parents[2] / "README.md"


def web_ui_queries() -> list[str]:
    section = README.read_text().split("## Web UI", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| [^|]+ \| `([^`]+)` \|$", section, flags=re.MULTILINE)


async def test_every_web_ui_query_in_the_readme_runs(dev_server_env: WorkflowEnvironment) -> None:
    queries = web_ui_queries()
    assert 'LanewayStatus="needs_review"' in queries and len(queries) >= 5
    for query in queries:
        # A query naming an unknown attribute or with bad syntax raises here.
        [execution async for execution in dev_server_env.client.list_workflows(query, limit=1)]
