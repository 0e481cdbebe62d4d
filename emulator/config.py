"""Emulator settings, from arguments or LANEWAY_EMULATOR_* environment variables."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from emulator.faults import FaultRule


class WebhookMode(StrEnum):
    NORMAL = "normal"
    DROP = "drop"
    DELAY = "delay"
    DUPLICATE = "duplicate"


class EmulatorConfig(BaseSettings):
    """Timings are in emulated seconds; the emulated clock runs `speed` times real time.

    With the defaults a 1,000-line batch takes about 5 + 1000 * 0.15 + 10 s = ~2.75 emulated
    minutes, i.e. under 3 real seconds at speed 60.
    """

    model_config = SettingsConfigDict(env_prefix="LANEWAY_EMULATOR_", extra="ignore")

    speed: float = Field(default=60.0, gt=0, description="emulated seconds per real second")
    api_key: str | None = Field(default=None, description="None accepts any non-empty key")
    data_dir: Path | None = Field(default=None, description="file bytes; None = a temp dir")
    max_batch_input_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    max_requests_per_batch: int = Field(default=50_000, gt=0)
    max_embedding_inputs_per_batch: int = Field(default=50_000, gt=0)

    batch_validating_seconds: float = Field(default=5.0, ge=0)
    batch_seconds_per_request: float = Field(default=0.15, ge=0)
    batch_finalizing_seconds: float = Field(default=10.0, ge=0)
    batch_cancelling_seconds: float = Field(default=30.0, ge=0)
    batch_completion_window_seconds: int = Field(default=24 * 3600, gt=0)

    response_queued_seconds: float = Field(default=2.0, ge=0)
    response_in_progress_seconds: float = Field(default=10.0, ge=0)

    tick_interval: float = Field(default=0.05, gt=0, description="real seconds between ticks")

    webhook_url: str | None = None
    webhook_secret: str | None = Field(default=None, description="whsec_<base64>")
    webhook_mode: WebhookMode = WebhookMode.NORMAL
    webhook_delay_seconds: float = Field(default=1.0, ge=0, description="real seconds, mode delay")
    webhook_attempts: int = Field(default=3, ge=1)

    strict: bool = Field(
        default=False,
        description=(
            "ignore Idempotency-Key on every create, as a provider that promises nothing "
            "would: a repeated create makes a second object"
        ),
    )

    faults: list[FaultRule] = Field(default_factory=list)
