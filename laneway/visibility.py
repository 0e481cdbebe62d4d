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
