"""What a background product job is: its spec, the references to large data, and token usage.

These models travel through Temporal workflow history and the workflow sandbox, so they are
pure and deterministic: no I/O, no clock. Prompt text lives in `JobSpec.input` only; anything
that may reach the ledger's summary, search attributes, memos or logs goes through
`JobSpec.input_summary()`, which never contains it.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidatorFunctionWrapHandler,
    WrapValidator,
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
# A job id names a workflow, a ledger row, an outbox file and a URL path segment: no separators.
JOB_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
SECRET_REF_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
OUTBOX_PATH_MAX_CHARS: Final = 512

# Set while a message is read back from workflow history (see `recorded`): specs written
# before a field was retired still load there, while new specs that use it are refused.
_READING_RECORDED: ContextVar[bool] = ContextVar("laneway_reading_recorded", default=False)


def reading_recorded() -> bool:
    return _READING_RECORDED.get()


def _read_recorded(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    token = _READING_RECORDED.set(True)
    try:
        return handler(value)
    finally:
        _READING_RECORDED.reset(token)


# `spec: Annotated[JobSpec, RECORDED]` on a message that travels through history: a job started
# by an earlier release (e.g. with an inline webhook secret) still replays and finishes.
RECORDED: Final = WrapValidator(_read_recorded)


def job_id_problem(job_id: str) -> str | None:
    """Why `job_id` cannot name a job, or None when it can."""
    if re.fullmatch(JOB_ID_PATTERN, job_id) is None:
        return (
            f"job id {job_id[:140]!r} is not allowed: 1-128 characters, letters, digits, "
            "'.', '_' and '-', starting with a letter or digit (no '/' or spaces)"
        )
    return None


def check_job_id(job_id: str) -> str:
    problem = job_id_problem(job_id)
    if problem is not None:
        raise ValueError(problem)
    return job_id


# A job id as every model that takes one checks it, with a message that says what is allowed.
JobId = Annotated[str, AfterValidator(check_job_id)]


def outbox_path_problem(path: str) -> str | None:
    """Why `path` cannot be an outbox sub-path, or None when it can."""
    if not path or path.strip() != path:
        return f"outbox path must be a non-empty sub-path such as 'acme/briefs', got {path!r}"
    if "\\" in path or "\x00" in path or any(ord(c) < 32 for c in path):
        return f"outbox path {path!r} may not hold backslashes or control characters"
    if path.startswith("/") or path.startswith("~") or re.match(r"^[A-Za-z]:", path):
        return f"outbox path {path!r} must be relative to the outbox root, not absolute"
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return (
            f"outbox path {path!r} must be a plain sub-path: no '..', '.' or empty parts "
            "(e.g. 'acme/briefs')"
        )
    return None


def webhook_url_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook target whatever the worker's policy, or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as error:
        return f"expected an http(s) URL, got {url!r} ({error})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"expected an http(s) URL with a host, got {url!r}"
    if parts.username is not None or parts.password is not None:
        return (
            "a webhook URL may not carry user info (user:password@): the request is signed "
            "with the secret named by secret_ref"
        )
    return None


def display_url(url: str) -> str:
    """`url` without user info, query string or fragment: safe to show a reviewer."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "(unreadable URL)"
    return f"{parts.scheme}://{host}{port}{parts.path}"


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
    """On approval, write the output under the worker's outbox root (LANEWAY_OUTBOX_DIR).

    `path` is a sub-path of that root (e.g. `acme/briefs`): relative, no `..`, and the worker
    checks again at delivery that it stays under the root once symlinks are resolved.
    `directory` is what jobs started before outbox roots carried; it is read back from their
    histories only, and a new spec that gives it is refused.
    """

    kind: Literal["deliver_to_outbox"] = "deliver_to_outbox"
    path: str | None = Field(
        default=None,
        max_length=OUTBOX_PATH_MAX_CHARS,
        description="sub-path under the outbox root, e.g. acme/briefs",
    )
    directory: str | None = Field(
        default=None, description="legacy, read from old histories only: use path"
    )

    @field_validator("path")
    @classmethod
    def _sub_path(cls, value: str | None) -> str | None:
        if value is not None:
            problem = outbox_path_problem(value)
            if problem is not None:
                raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _one_destination(self) -> DeliverToOutbox:
        if self.directory is not None and not reading_recorded():
            raise ValueError(
                "deliver_to_outbox.directory is no longer accepted: give path, a sub-path "
                "under the worker's outbox root (LANEWAY_OUTBOX_DIR), e.g. 'acme/briefs'"
            )
        if (self.path is None) == (self.directory is None):
            raise ValueError(
                "deliver_to_outbox needs path: a sub-path under the worker's outbox root, "
                "e.g. 'acme/briefs'"
            )
        return self

    def destination(self) -> str:
        """Where the delivery goes, as a reviewer sees it."""
        if self.path is not None:
            return f"outbox:{self.path}"
        return f"outbox (legacy directory): {self.directory}"


class PostWebhook(BaseModel):
    """On approval, POST the result to a URL, signed with HMAC-SHA256 over the body.

    The signing key is never in the spec: `secret_ref` names one of the worker's
    LANEWAY_WEBHOOK_SECRETS, resolved at delivery. `secret` is what jobs started before secret
    references carried; it is read back from their histories only, and a new spec that gives
    it is refused.
    """

    kind: Literal["post_webhook"] = "post_webhook"
    url: str = Field(min_length=1, max_length=2048)
    secret_ref: str | None = Field(
        default=None,
        description="name of the signing secret in the worker's LANEWAY_WEBHOOK_SECRETS",
    )
    secret: SecretStr | None = Field(
        default=None, description="legacy, read from old histories only: use secret_ref"
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        problem = webhook_url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("secret_ref")
    @classmethod
    def _secret_name(cls, value: str | None) -> str | None:
        if value is not None and re.fullmatch(SECRET_REF_PATTERN, value) is None:
            raise ValueError(
                f"secret_ref names a secret (letters, digits, . _ -; at most 64), got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _secret_by_reference(self) -> PostWebhook:
        if self.secret is not None and not reading_recorded():
            raise ValueError(
                "post_webhook.secret is no longer accepted: a spec never carries the signing "
                "key; give secret_ref, the name of a secret in the worker's "
                "LANEWAY_WEBHOOK_SECRETS (e.g. 'acme-hooks')"
            )
        if self.secret_ref is None and self.secret is None:
            raise ValueError(
                "post_webhook needs secret_ref: the name of the signing secret in the "
                "worker's LANEWAY_WEBHOOK_SECRETS (e.g. 'acme-hooks')"
            )
        return self

    # A legacy job's key is read back from its history and used to sign its delivery, so it
    # is revealed on dump (still masked in repr); new specs carry no key at all.
    @field_serializer("secret", when_used="always")
    def _reveal_secret(self, value: SecretStr | None) -> str | None:
        return None if value is None else value.get_secret_value()

    def destination(self) -> str:
        """The URL as a reviewer sees it: no user info, no query string, no fragment."""
        return display_url(self.url)


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
    side_effect_destination: str | None = Field(
        default=None, description="where the side effect delivers: outbox sub-path or URL"
    )


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
            side_effect_destination=(
                None if self.side_effect is None else self.side_effect.destination()
            ),
        )
