"""Fault rules: what to break, for which requests, how often.

A rule is matched against a `FaultContext` (an HTTP request or an object the engine is about to
move). `times` and `probability` decide whether a matching rule fires; probability draws from a
per-rule seeded generator so a run is reproducible.
"""

from __future__ import annotations

import random
import re
import threading
import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, Field, PrivateAttr


class FaultKind(StrEnum):
    # HTTP faults, applied to matching /v1 requests before the route runs.
    HTTP_429 = "http_429"
    HTTP_500 = "http_500"
    HTTP_503 = "http_503"
    LATENCY = "latency"
    DROP_CONNECTION = "drop_connection"
    # Batch faults, decided once when a batch finishes validating.
    BATCH_VALIDATION_FAILED = "batch_validation_failed"
    BATCH_TOKEN_LIMIT_EXCEEDED = "batch_token_limit_exceeded"
    BATCH_EXPIRE = "batch_expire"
    BATCH_STICK_FINALIZING = "batch_stick_finalizing"
    BATCH_FAIL_FRACTION = "batch_fail_fraction"
    # The batch reports a result for every request, but some lines never reach its files
    # (fraction 1.0: a "completed" batch without an output file).
    BATCH_OMIT_RESULTS = "batch_omit_results"
    # Response faults, decided when a response starts running.
    RESPONSE_FAIL = "response_fail"
    RESPONSE_INCOMPLETE = "response_incomplete"
    RESPONSE_STICK = "response_stick"


HTTP_KINDS = frozenset(
    {
        FaultKind.HTTP_429,
        FaultKind.HTTP_500,
        FaultKind.HTTP_503,
        FaultKind.LATENCY,
        FaultKind.DROP_CONNECTION,
    }
)
BATCH_KINDS = frozenset(k for k in FaultKind if k.value.startswith("batch_"))
RESPONSE_KINDS = frozenset(k for k in FaultKind if k.value.startswith("response_"))


class FaultMatch(BaseModel):
    """Every given field must match; an empty match matches everything of the rule's kind."""

    method: str | None = None
    path_prefix: str | None = Field(default=None, description="e.g. /v1/responses")
    path_regex: str | None = Field(default=None, description="re.search against the path")
    model: str | None = None
    metadata_key: str | None = None
    metadata_value: str | None = Field(default=None, description="needs metadata_key")
    object_id: str | None = Field(default=None, description="a batch or response id")

    def matches(self, ctx: FaultContext) -> bool:
        checks = (
            self.method is None or self.method.upper() == ctx.method.upper(),
            self.path_prefix is None or ctx.path.startswith(self.path_prefix),
            self.path_regex is None or re.search(self.path_regex, ctx.path) is not None,
            self.model is None or self.model == ctx.model,
            self._metadata_matches(ctx.metadata),
            self.object_id is None or self.object_id == ctx.object_id,
        )
        return all(checks)

    def _metadata_matches(self, metadata: dict[str, str]) -> bool:
        if self.metadata_key is None:
            return True
        if self.metadata_key not in metadata:
            return False
        return self.metadata_value is None or metadata[self.metadata_key] == self.metadata_value


class FaultRule(BaseModel):
    """One fault. Examples (JSON, as in LANEWAY_EMULATOR_FAULTS or POST /_emulator/faults):

    {"kind": "http_429", "match": {"path_prefix": "/v1/batches", "method": "POST"}, "times": 1,
     "retry_after": 2}
    {"kind": "drop_connection", "match": {"path_regex": "^/v1/responses$"}, "probability": 0.5}
    {"kind": "batch_fail_fraction", "match": {"metadata_key": "suite"}, "fraction": 0.1}
    {"kind": "response_stick", "match": {"model": "gpt-4o-mini"}}
    """

    id: str = Field(default_factory=lambda: f"fault_{uuid.uuid4().hex[:12]}")
    kind: FaultKind
    match: FaultMatch = Field(default_factory=FaultMatch)
    times: int | None = Field(
        default=None, ge=0, description="fires at most this often; None=always"
    )
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    seed: int = 0
    retry_after: float = Field(default=1.0, ge=0, description="http_429: Retry-After seconds")
    latency_seconds: float = Field(default=1.0, ge=0, description="latency: real seconds added")
    fraction: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description=(
            "batch_fail_fraction: share of requests failing; batch_expire: share done; "
            "batch_omit_results: share of result lines left out of the files"
        ),
    )
    status_code: int | None = Field(
        default=None, description="batch_fail_fraction: 429 or 500; None mixes both per custom_id"
    )
    message: str | None = None

    _rng: random.Random | None = PrivateAttr(default=None)
    _fired: int = PrivateAttr(default=0)

    @property
    def fired(self) -> int:
        return self._fired

    def try_fire(self, ctx: FaultContext) -> bool:
        """Whether this rule fires for `ctx`; counts the firing. Caller holds the book's lock."""
        if not self.match.matches(ctx):
            return False
        if self.times is not None and self._fired >= self.times:
            return False
        if self.probability < 1.0:
            if self._rng is None:
                self._rng = random.Random(self.seed)
            if self._rng.random() >= self.probability:
                return False
        self._fired += 1
        return True


@dataclass(frozen=True)
class FaultContext:
    method: str
    path: str
    model: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    object_id: str | None = None


class FaultBook:
    """The active rules; thread-safe because routes and the engine's thread both consult it."""

    def __init__(self, rules: list[FaultRule]) -> None:
        self._lock = threading.Lock()
        self._rules = [rule.model_copy(deep=True) for rule in rules]

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def replace(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self._rules = [rule.model_copy(deep=True) for rule in rules]

    def snapshot(self) -> list[dict[str, object]]:
        with self._lock:
            return [{**rule.model_dump(mode="json"), "fired": rule.fired} for rule in self._rules]

    def has_any(self, kinds: frozenset[FaultKind]) -> bool:
        with self._lock:
            return any(rule.kind in kinds for rule in self._rules)

    def fire(self, kinds: frozenset[FaultKind], ctx: FaultContext) -> list[FaultRule]:
        """Every rule of `kinds` that fires for `ctx`, in the order they were added."""
        with self._lock:
            return [rule for rule in self._rules if rule.kind in kinds and rule.try_fire(ctx)]

    def first(self, kinds: frozenset[FaultKind], ctx: FaultContext) -> FaultRule | None:
        """The first rule of `kinds` that fires; later rules are not consulted (nor counted)."""
        with self._lock:
            for rule in self._rules:
                if rule.kind in kinds and rule.try_fire(ctx):
                    return rule
            return None
