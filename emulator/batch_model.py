"""Batch records: lifecycle fields, runtime progress, and the OpenAI-shaped rendering."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator import ids
from emulator.faults import FaultRule

SUPPORTED_ENDPOINTS = ("/v1/chat/completions", "/v1/responses", "/v1/embeddings")
KNOWN_ENDPOINTS = (
    *SUPPORTED_ENDPOINTS,
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
)
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_TIMESTAMPS = (
    "in_progress_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


@dataclass(frozen=True)
class BatchLine:
    """One validated input request."""

    custom_id: str
    body: dict[str, Any]


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def render(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": self.input_tokens + self.output_tokens,
        }


@dataclass
class BatchFaults:
    """Faults decided for this batch when it finished validating."""

    fail_fraction: FaultRule | None = None
    expire: FaultRule | None = None
    stick_finalizing: bool = False
    omit_results: FaultRule | None = None


@dataclass
class BatchRecord:
    endpoint: str
    input_file_id: str
    completion_window: str
    metadata: dict[str, str] | None
    created_at: int
    expires_at: int
    seq: int
    id: str = field(default_factory=ids.batch_id)
    status: str = "validating"
    model: str | None = None
    times: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    usage: Usage = field(default_factory=Usage)
    # Runtime, not rendered: requests in execution order and how far execution got.
    lines: list[BatchLine] = field(default_factory=list)
    next_index: int = 0
    faults: BatchFaults = field(default_factory=BatchFaults)
    output_path: Path | None = None
    error_path: Path | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def render(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "model": self.model,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }
        body.update({name: self.times.get(name) for name in _TIMESTAMPS})
        body["request_counts"] = {
            "total": self.total,
            "completed": self.completed,
            "failed": self.failed,
        }
        body["usage"] = self.usage.render() if self.terminal else None
        body["metadata"] = self.metadata
        return body
