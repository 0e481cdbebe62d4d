"""What a background product job is: its spec, the references to large data, and token usage.

These models travel through Temporal workflow history and the workflow sandbox, so they are
pure and deterministic: no I/O, no clock. Prompt text lives in `JobSpec.input` only; anything
that may reach the ledger's summary, search attributes, memos or logs goes through
`JobSpec.input_summary()`, which never contains it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)

METADATA_MAX_PAIRS: Final = 16
METADATA_MAX_KEY_CHARS: Final = 64
METADATA_MAX_VALUE_CHARS: Final = 512

# Inline input text travels through workflow history (encrypted, but still there): at most
# this many characters (200 KB of UTF-8 at worst). Larger input goes to the artifact store;
# the Python client and the HTTP API do that themselves (`LanewayClient.job_input`).
INLINE_TEXT_MAX_CHARS: Final = 50_000

JOB_TYPE_PATTERN: Final = r"^[a-z][a-z0-9_-]{0,63}$"
SHA256_PATTERN: Final = r"^[0-9a-f]{64}$"
# A job id is a URL path segment, a file name and a workflow id: letters, digits, and `-`, `_`,
# `.`, `:` after the first character; no `/`, no spaces, at most 200 characters.
JOB_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$"
_JOB_ID: Final = re.compile(JOB_ID_PATTERN)


def check_job_id(job_id: str) -> str:
    """`job_id` if it can be a job id, else ValueError saying what is wrong in plain words."""
    if _JOB_ID.fullmatch(job_id):
        return job_id
    if not job_id:
        raise ValueError("a job id cannot be empty")
    if len(job_id) > 200:
        raise ValueError(f"a job id has at most 200 characters; this one has {len(job_id)}")
    raise ValueError(
        f"job id {job_id[:60]!r} cannot be used: use letters, digits and - _ . : "
        "(starting with a letter or digit), no / or spaces, so every surface can reach the job"
    )


class ArtifactRef(BaseModel):
    """A claim check for data too large for workflow history (outputs, inputs, JSONL shards)."""

    model_config = ConfigDict(frozen=True)

    uri: str = Field(min_length=1, description="where the bytes live, e.g. artifact://<sha256>")
    sha256: str = Field(pattern=SHA256_PATTERN, description="lowercase hex digest of the bytes")
    size_bytes: int = Field(ge=0)
    media_type: str = Field(default="application/octet-stream", min_length=1)


class Usage(BaseModel):
    """Token usage as the provider reports it; reasoning tokens are part of output tokens."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = Field(default=0, ge=0)
    cached_input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    reasoning_tokens: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _parts_within_totals(self) -> Usage:
        if self.cached_input_tokens > self.input_tokens:
            raise ValueError(
                f"cached_input_tokens ({self.cached_input_tokens}) cannot exceed "
                f"input_tokens ({self.input_tokens}): cached tokens are part of the input"
            )
        if self.reasoning_tokens > self.output_tokens:
            raise ValueError(
                f"reasoning_tokens ({self.reasoning_tokens}) cannot exceed "
                f"output_tokens ({self.output_tokens}): reasoning tokens are part of the output"
            )
        return self

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
        )


class ReviewPolicy(StrEnum):
    """When a reviewer must look at the output before the job completes."""

    AUTO = "auto"
    REQUIRED = "required"
    ON_INCOMPLETE = "on_incomplete"

    def wants_review(self, response_status: str) -> bool:
        """Whether a finished response with this provider status goes to a reviewer."""
        if self is ReviewPolicy.REQUIRED:
            return response_status in ("completed", "incomplete")
        if self is ReviewPolicy.ON_INCOMPLETE:
            return response_status == "incomplete"
        return False


class ReviewExpiryAction(StrEnum):
    """What happens when nobody reviews in time."""

    EXPIRE = "expire"
    ESCALATE = "escalate"


class JobInput(BaseModel):
    """The model call: exactly one of `text` or `artifact` carries the input."""

    model: str = Field(min_length=1, max_length=100)
    instructions: str | None = Field(default=None, max_length=256_000)
    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=INLINE_TEXT_MAX_CHARS,
        description=(
            f"input text, at most {INLINE_TEXT_MAX_CHARS:,} characters; larger input "
            "goes in as an artifact"
        ),
    )
    artifact: ArtifactRef | None = Field(
        default=None, description="reference to a stored input, for large inputs"
    )
    max_output_tokens: int | None = Field(default=None, ge=16, le=1_000_000)
    service_tier: Literal["standard", "flex"] = "standard"

    @model_validator(mode="after")
    def _exactly_one_input(self) -> JobInput:
        if (self.text is None) == (self.artifact is None):
            given = "both" if self.text is not None else "neither"
            raise ValueError(
                f"give exactly one of input.text or input.artifact (got {given}): "
                "inline text for small inputs, an artifact reference for large ones"
            )
        return self


class DeliverToOutbox(BaseModel):
    """On approval, write the output into a directory (one file per job)."""

    kind: Literal["deliver_to_outbox"] = "deliver_to_outbox"
    directory: str = Field(min_length=1)


class PostWebhook(BaseModel):
    """On approval, POST the result to a URL, signed with HMAC-SHA256 over the body."""

    kind: Literal["post_webhook"] = "post_webhook"
    url: str = Field(min_length=1, max_length=2048)
    secret: SecretStr = Field(description="HMAC-SHA256 signing key; hidden in repr and logs")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http(s) URL, got {value!r}")
        return value

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("the signing secret must be at least 16 characters")
        return value

    # SecretStr would serialise as "**********"; the worker must get the real key back
    # from workflow history, so it is revealed on dump (and still masked in repr).
    @field_serializer("secret", when_used="always")
    def _reveal_secret(self, value: SecretStr) -> str:
        return value.get_secret_value()


SideEffect = Annotated[DeliverToOutbox | PostWebhook, Field(discriminator="kind")]


class InputSummary(BaseModel):
    """What may be shown about a job's input anywhere: sizes and references, no prompt text."""

    model: str
    service_tier: str
    max_output_tokens: int | None
    instructions_chars: int
    input_chars: int | None
    input_artifact: ArtifactRef | None
    side_effect: str | None
    review_policy: ReviewPolicy


def check_metadata(metadata: dict[str, str]) -> dict[str, str]:
    problems: list[str] = []
    if len(metadata) > METADATA_MAX_PAIRS:
        problems.append(f"at most {METADATA_MAX_PAIRS} pairs (got {len(metadata)})")
    for key, value in metadata.items():
        if not key or len(key) > METADATA_MAX_KEY_CHARS:
            problems.append(f"key {key[:20]!r} must be 1-{METADATA_MAX_KEY_CHARS} characters")
        if len(value) > METADATA_MAX_VALUE_CHARS:
            problems.append(
                f"value of {key!r} has {len(value)} characters, "
                f"at most {METADATA_MAX_VALUE_CHARS} allowed"
            )
    if problems:
        raise ValueError("metadata: " + "; ".join(problems))
    return metadata


class JobSpec(BaseModel):
    """A background job as a product asks for it."""

    job_type: str = Field(
        pattern=JOB_TYPE_PATTERN,
        description="short slug such as research_brief: lowercase letters, digits, _ and -",
    )
    workspace: str = Field(min_length=1, max_length=200)
    requested_by: str = Field(min_length=1, max_length=200)
    input: JobInput
    review_policy: ReviewPolicy = ReviewPolicy.AUTO
    side_effect: SideEffect | None = None
    provider_deadline: timedelta = Field(
        default=timedelta(hours=1),
        gt=timedelta(0),
        le=timedelta(days=7),
        description="how long the provider may work before the job is given up",
    )
    review_deadline: timedelta = Field(
        default=timedelta(days=3),
        gt=timedelta(0),
        le=timedelta(days=90),
        description="how long the output may wait for a reviewer",
    )
    review_expiry_action: ReviewExpiryAction = ReviewExpiryAction.EXPIRE
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("metadata")
    @classmethod
    def _metadata_within_limits(cls, value: dict[str, str]) -> dict[str, str]:
        return check_metadata(value)

    @model_validator(mode="after")
    def _side_effect_behind_approval(self) -> JobSpec:
        # DESIGN.md: a side effect always sits behind an approval gate.
        if self.side_effect is not None and self.review_policy is not ReviewPolicy.REQUIRED:
            raise ValueError(
                f"a side effect ({self.side_effect.kind}) runs only after a reviewer approves: "
                f"set review_policy to 'required' (got {self.review_policy.value!r}) "
                "or remove side_effect"
            )
        return self

    def input_summary(self) -> InputSummary:
        spec_input = self.input
        return InputSummary(
            model=spec_input.model,
            service_tier=spec_input.service_tier,
            max_output_tokens=spec_input.max_output_tokens,
            instructions_chars=len(spec_input.instructions or ""),
            input_chars=None if spec_input.text is None else len(spec_input.text),
            input_artifact=spec_input.artifact,
            side_effect=None if self.side_effect is None else self.side_effect.kind,
            review_policy=self.review_policy,
        )
