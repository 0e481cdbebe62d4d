"""The one place an OpenAI client is built for activities."""

from __future__ import annotations

from openai import AsyncOpenAI

from laneway.settings import Settings


class ProviderNotConfiguredError(RuntimeError):
    """Neither a key for OpenAI nor a base URL of a compatible server was given."""


def build_openai_client(settings: Settings) -> AsyncOpenAI:
    """An async client with SDK retries off: Temporal's retry policies own retries."""
    if settings.openai_api_key is None:
        raise ProviderNotConfiguredError(
            "OPENAI_API_KEY is not set: set it to an OpenAI key, or to any value together with "
            "OPENAI_BASE_URL pointing at an OpenAI-compatible server such as the emulator"
        )
    return AsyncOpenAI(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        webhook_secret=settings.openai_webhook_secret,
        max_retries=0,
    )
