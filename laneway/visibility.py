"""Laneway's custom Temporal search attributes: names and types, as the server registers them.

Every workflow sets these so operators can list jobs in the Temporal Web UI, e.g.
`LanewayStatus = "needs_review"`. They carry ids and words, never secrets or prompt text.
"""

from __future__ import annotations

from typing import Final, Literal

SearchAttributeType = Literal["Keyword", "KeywordList", "Text", "Int", "Double", "Bool", "Datetime"]

SEARCH_ATTRIBUTES: Final[dict[str, SearchAttributeType]] = {
    "LanewayStatus": "Keyword",
    "LanewayLane": "Keyword",
    "LanewayJobType": "Keyword",
    "LanewayWorkspace": "Keyword",
    "LanewayProviderIds": "KeywordList",
    # Batch jobs' progress. The dev server's SQL visibility allows 3 Int attributes, so the
    # round and pending records travel in the LanewayProgress keyword beside these counts.
    "LanewayRecordsTotal": "Int",
    "LanewayRecordsSucceeded": "Int",
    "LanewayRecordsFailed": "Int",
    "LanewayProgress": "Keyword",
}


def search_attribute_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    flags: list[str] = []
    for name, kind in SEARCH_ATTRIBUTES.items():
        flags += ["--search-attribute", f"{name}={kind}"]
    return flags


# The workflow types that are product jobs (shards and stack checks are not listed as jobs).
JOB_WORKFLOW_TYPES: Final = ("BackgroundJobWorkflow", "BatchJobWorkflow")
_UNQUOTABLE = ("'", '"', "\\")


def jobs_query(
    *,
    status: str | None = None,
    lane: str | None = None,
    workspace: str | None = None,
    job_type: str | None = None,
) -> str:
    """The Temporal visibility query that lists jobs matching every filter given.

    Values are quoted as literals; one holding a quote or backslash is refused (ValueError),
    since no workspace or job type Laneway accepts contains one.
    """
    types = ", ".join(f"'{name}'" for name in JOB_WORKFLOW_TYPES)
    clauses = [f"WorkflowType IN ({types})"]
    for attribute, filter_name, value in (
        ("LanewayStatus", "status", status),
        ("LanewayLane", "lane", lane),
        ("LanewayWorkspace", "workspace", workspace),
        ("LanewayJobType", "job type", job_type),
    ):
        if value is None:
            continue
        if any(mark in value for mark in _UNQUOTABLE):
            raise ValueError(
                f"the {filter_name} filter {value!r} may not contain quotes or backslashes"
            )
        clauses.append(f"{attribute} = '{value}'")
    return " AND ".join(clauses)
