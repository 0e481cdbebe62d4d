"""Process settings, read once at start from the environment (and an optional `.env` file).

Laneway's own settings use the `LANEWAY_` prefix; the OpenAI ones keep the names the
`openai` SDK itself reads, so a deployment configures the provider the usual way.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from laneway.background import Actor
from laneway.jobs import SECRET_REF_PATTERN
from laneway.problems import describe, problem_message

LogFormat = Literal["console", "json"]


class SettingsError(Exception):
    """A setting has a value Laneway cannot run with; the message names the variable."""


class TokenIdentity(BaseModel):
    """Who an API token speaks for: one actor, in one workspace, with these roles."""

    actor: str = Field(min_length=1, max_length=200)
    workspace: str = Field(min_length=1, max_length=200)
    roles: frozenset[str] = frozenset()

    def as_actor(self) -> Actor:
        return Actor(id=self.actor, workspace=self.workspace, roles=self.roles)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LANEWAY_", env_file=".env", extra="ignore", frozen=True
    )

    temporal_address: str = Field(
        default="127.0.0.1:7233", description="host:port of the Temporal frontend"
    )
    temporal_namespace: str = Field(default="default", min_length=1)
    task_queue: str = Field(default="laneway", min_length=1)
    data_dir: Path = Field(
        default=Path("var"), description="local state: Temporal's SQLite file, ledger, artifacts"
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the job ledger; default a SQLite file in the data directory",
    )
    artifact_dir: Path | None = Field(
        default=None, description="where outputs and inputs are stored; default DATA_DIR/artifacts"
    )
    outbox_dir: Path | None = Field(
        default=None,
        description="the root every outbox delivery goes under; default DATA_DIR/outbox",
    )
    webhook_allow_hosts: list[str] = Field(
        default_factory=list,
        description=(
            'JSON list of hosts (names, addresses or CIDR ranges), e.g. ["127.0.0.1", '
            '"hooks.internal"]: webhook targets that may use plain http and private, loopback '
            "or link-local addresses"
        ),
    )
    webhook_secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description=(
            'JSON object of webhook signing secrets by name, e.g. {"acme-hooks": "..."}: '
            "a post_webhook spec names one with secret_ref"
        ),
    )
    emulator_address: str = Field(
        default="127.0.0.1:8081", description="host:port where `laneway dev` runs the emulator"
    )
    temporal_ui_port: int = Field(default=8233, ge=1, le=65535)
    batch_plan_approval_usd: dict[str, Decimal] = Field(
        default_factory=dict,
        description=(
            'per workspace, e.g. {"acme": "50"}: a batch plan estimated above this many US '
            "dollars (batch price) waits for a reviewer's approval before anything is sent"
        ),
    )
    api_address: str = Field(
        default="127.0.0.1:8000", description="host:port where `laneway api` listens"
    )
    api_tokens: dict[str, TokenIdentity] = Field(
        default_factory=dict,
        description=(
            'API tokens, e.g. {"tok-rita": {"actor": "rita", "workspace": "acme", '
            '"roles": ["reviewer"]}}; merged with LANEWAY_API_TOKENS_FILE'
        ),
    )
    api_tokens_file: Path | None = Field(
        default=None, description="a JSON file of the same mapping, e.g. a mounted secret"
    )
    webhook_poll_interval: timedelta = Field(
        default=timedelta(minutes=5),
        gt=timedelta(0),
        description=(
            "with OPENAI_WEBHOOK_SECRET set, the longest gap between a job's polls, as a "
            "safety net for a lost webhook; ISO 8601 (PT5M) or HH:MM:SS"
        ),
    )
    payload_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description=(
            'payload encryption keys by id, base64 (16, 24 or 32 bytes), e.g. {"2026-12": '
            '"<base64>"}: every key decrypts, LANEWAY_PAYLOAD_KEY_ID encrypts; merged with '
            "LANEWAY_PAYLOAD_KEYS_FILE"
        ),
    )
    payload_key_id: str | None = Field(
        default=None,
        min_length=1,
        description="the id of the key that encrypts new payloads (optional with one key)",
    )
    payload_keys_file: Path | None = Field(
        default=None,
        description='a JSON file {"keys": {id: base64}, "current": id}, e.g. a mounted secret',
    )
    codec_cors_origins: list[str] = Field(
        default_factory=list,
        description=(
            "browser origins, besides the local Temporal Web UI, allowed to call the codec "
            'endpoint, e.g. ["https://temporal.example.com"]'
        ),
    )
    log_format: LogFormat = Field(default="console", description="console (dev) or json (prod)")
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    openai_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url")
    )
    openai_webhook_secret: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_WEBHOOK_SECRET", "openai_webhook_secret"),
    )

    @field_validator("temporal_address", "emulator_address", "api_address")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port, e.g. 127.0.0.1:7233, got {value!r}")
        return value

    @field_validator("openai_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(
                f"expected an http(s) URL such as http://127.0.0.1:8081/v1, got {value!r}"
            )
        return value

    @field_validator("openai_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("expected a webhook signing secret (whsec_...), got an empty value")
        return value

    @field_validator("payload_keys")
    @classmethod
    def _payload_keys(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for key_id, key in value.items():
            problem = payload_key_problem(key_id, key.get_secret_value())
            if problem is not None:
                raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _current_payload_key(self) -> Settings:
        if (
            self.payload_key_id is not None
            and self.payload_keys_file is None
            and self.payload_key_id not in self.payload_keys
        ):
            raise ValueError(
                f"LANEWAY_PAYLOAD_KEY_ID names {self.payload_key_id!r}, which is not a key "
                f"of LANEWAY_PAYLOAD_KEYS ({', '.join(sorted(self.payload_keys)) or 'none'})"
            )
        return self

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is not None and "://" not in value:
            raise ValueError(
                "expected a SQLAlchemy URL such as sqlite:///var/ledger.db or "
                f"postgresql+psycopg://user@host/laneway, got {value!r}"
            )
        return value

    @field_validator("webhook_secrets")
    @classmethod
    def _secrets_named(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, secret in value.items():
            if re.fullmatch(SECRET_REF_PATTERN, name) is None:
                raise ValueError(
                    f"secret names are letters, digits, . _ - (at most 64), got {name[:70]!r}"
                )
            if len(secret.get_secret_value()) < 16:
                raise ValueError(f"the secret named {name!r} must be at least 16 characters")
        return value

    @field_validator("webhook_allow_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if not host.strip() or ("/" in host and not _is_network(host)):
                raise ValueError(f"expected host names, addresses or CIDR ranges, got {host!r}")
        return [host.strip().lower() for host in value]

    @property
    def outbox_path(self) -> Path:
        return self.outbox_dir or self.data_dir / "outbox"

    @property
    def webhooks_enabled(self) -> bool:
        """Provider webhooks reach `POST /webhooks/openai`, so polling is only a safety net."""
        return self.openai_webhook_secret is not None

    def tokens(self) -> dict[str, TokenIdentity]:
        """Every configured API token: LANEWAY_API_TOKENS and the tokens file together."""
        tokens = dict(self.api_tokens)
        if self.api_tokens_file is not None:
            tokens.update(read_tokens_file(self.api_tokens_file))
        return tokens

    @property
    def ledger_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'ledger.db'}"

    @property
    def artifacts_path(self) -> Path:
        return self.artifact_dir or self.data_dir / "artifacts"

    @property
    def emulator_base_url(self) -> str:
        return f"http://{self.emulator_address}/v1"

    @property
    def temporal_ui_url(self) -> str:
        host = self.temporal_address.rpartition(":")[0]
        return f"http://{host}:{self.temporal_ui_port}"


def payload_key_problem(key_id: str, key: str) -> str | None:
    """What is wrong with one configured payload key (never its value), or None."""
    if not key_id:
        return "a payload key id must not be empty"
    try:
        size = len(base64.b64decode(key, validate=True))
    except (binascii.Error, ValueError):
        return f"payload key {key_id!r} is not base64"
    if size not in (16, 24, 32):
        return f"payload key {key_id!r} has {size} bytes; AES-GCM takes 16, 24 or 32"
    return None


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def read_tokens_file(path: Path) -> dict[str, TokenIdentity]:
    """The token mapping in `path`, or SettingsError saying what is wrong with the file."""
    try:
        raw = json.loads(path.read_text())
        return {token: TokenIdentity.model_validate(who) for token, who in dict(raw).items()}
    except ValidationError as error:  # says which field, never which token (a secret)
        problem = describe(error)
    except OSError as error:
        problem = error.strerror or "unreadable"
    except (ValueError, TypeError) as error:
        problem = f"not a JSON object of tokens ({error})"
    raise SettingsError(
        f"LANEWAY_API_TOKENS_FILE: cannot use {path}: {problem}; expected a JSON object "
        'such as {"tok-rita": {"actor": "rita", "workspace": "acme", "roles": ["reviewer"]}}'
    )


def _env_name(location: str) -> str:
    """The environment variable behind an error location (a field name, or an alias already)."""
    field = Settings.model_fields.get(location)
    if field is None:
        return location
    if isinstance(field.validation_alias, AliasChoices):
        return str(field.validation_alias.choices[0])
    return f"LANEWAY_{location.upper()}"


# What a JSON-valued variable expects, said with its error.
_JSON_EXAMPLES = {
    "api_tokens": '{"tok-rita": {"actor": "rita", "workspace": "acme", "roles": ["reviewer"]}}',
    "batch_plan_approval_usd": '{"acme": "50"}',
}
_SOURCE_FIELD = re.compile(r'field "(\w+)"')


def _expects(field: str) -> str:
    example = _JSON_EXAMPLES.get(field)
    return f"; expected a JSON object such as {example}" if example else ""


def _problem(err: ErrorDetails) -> str:
    """`VARIABLE: what is wrong[ (at key)][; what it expects]` for one validation problem."""
    if not err["loc"]:
        return problem_message(err)
    field, *inner = (str(part) for part in err["loc"])
    if field == "api_tokens":  # the key is a token, a secret: name only the field within
        inner = inner[1:]
    where = f" (at {'.'.join(inner)})" if inner else ""
    return f"{_env_name(field)}: {problem_message(err)}{where}{_expects(field)}"


def load_settings() -> Settings:
    """Read settings, or raise SettingsError: one line naming each bad variable and what it
    expects (several problems are joined with `; `)."""
    try:
        return Settings()
    except ValidationError as exc:
        message = "; ".join(_problem(err) for err in exc.errors())
    except SourceError as exc:  # a complex value that is not JSON, e.g. LANEWAY_API_TOKENS={bad
        found = _SOURCE_FIELD.search(str(exc))
        field = found.group(1) if found else ""
        cause = exc.__cause__
        problem = f"not valid JSON ({cause})" if cause is not None else "not valid JSON"
        message = f"{_env_name(field) if field else 'settings'}: {problem}{_expects(field)}"
    raise SettingsError(message)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return load_settings()
