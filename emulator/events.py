"""Lifecycle events the engine emits; the webhook sender turns them into deliveries."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    type: str  # e.g. "batch.completed", "response.cancelled"
    object_id: str
    created_at: int
