"""Typed keys for Laneway's search attributes, for workflows to upsert and clients to query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from temporalio.common import SearchAttributeKey

from laneway.visibility import SEARCH_ATTRIBUTES

LANEWAY_STATUS: Final = SearchAttributeKey.for_keyword("LanewayStatus")
LANEWAY_LANE: Final = SearchAttributeKey.for_keyword("LanewayLane")
LANEWAY_JOB_TYPE: Final = SearchAttributeKey.for_keyword("LanewayJobType")
LANEWAY_WORKSPACE: Final = SearchAttributeKey.for_keyword("LanewayWorkspace")
LANEWAY_PROVIDER_IDS: Final = SearchAttributeKey.for_keyword_list("LanewayProviderIds")
LANEWAY_RECORDS_TOTAL: Final = SearchAttributeKey.for_int("LanewayRecordsTotal")
LANEWAY_RECORDS_SUCCEEDED: Final = SearchAttributeKey.for_int("LanewayRecordsSucceeded")
LANEWAY_RECORDS_FAILED: Final = SearchAttributeKey.for_int("LanewayRecordsFailed")
LANEWAY_PROGRESS: Final = SearchAttributeKey.for_keyword("LanewayProgress")

ALL_KEYS: Final[
    tuple[
        SearchAttributeKey[str] | SearchAttributeKey[Sequence[str]] | SearchAttributeKey[int], ...
    ]
] = (
    LANEWAY_STATUS,
    LANEWAY_LANE,
    LANEWAY_JOB_TYPE,
    LANEWAY_WORKSPACE,
    LANEWAY_PROVIDER_IDS,
    LANEWAY_RECORDS_TOTAL,
    LANEWAY_RECORDS_SUCCEEDED,
    LANEWAY_RECORDS_FAILED,
    LANEWAY_PROGRESS,
)

# The typed keys and the server registration list must never drift apart.
assert {key.name for key in ALL_KEYS} == set(SEARCH_ATTRIBUTES)
