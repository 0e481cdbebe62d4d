"""The stack check: one tiny job that proves Temporal, a worker and the provider all answer."""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel

CHECK_PROVIDER_ACTIVITY: Final = "check_provider"


class ProviderCheck(BaseModel):
    """What the worker saw when it called the provider."""

    base_url: str
    models: list[str]
