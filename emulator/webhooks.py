"""Webhook delivery, signed the Standard Webhooks way (what `client.webhooks.unwrap` checks).

Deliveries run as tasks on the server's event loop, so a slow receiver never holds up the
clock. The signature timestamp is the real wall-clock time: receivers compare it with their
own clock (300 s tolerance); the event's `created_at` is emulated time like every timestamp.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections import Counter
from typing import Any

import httpx
import structlog
from pydantic import BaseModel, Field

from emulator import ids
from emulator.config import EmulatorConfig, WebhookMode
from emulator.events import Event

log = structlog.get_logger()
RETRY_BACKOFF = 0.2  # real seconds before the 2nd attempt, doubling after
RECENT = 500


class WebhookSettings(BaseModel):
    url: str | None = None
    secret: str | None = None
    mode: WebhookMode = WebhookMode.NORMAL
    delay_seconds: float = Field(default=1.0, ge=0)


def signing_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_") :])
    return secret.encode()


def sign(secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    message = f"{webhook_id}.{timestamp}.{body}".encode()
    digest = hmac.new(signing_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def event_payload(event: Event) -> dict[str, Any]:
    return {
        "id": ids.event_id(),
        "object": "event",
        "type": event.type,
        "created_at": event.created_at,
        "data": {"id": event.object_id},
    }


class WebhookSender:
    def __init__(self, config: EmulatorConfig) -> None:
        self._defaults = WebhookSettings(
            url=config.webhook_url,
            secret=config.webhook_secret,
            mode=config.webhook_mode,
            delay_seconds=config.webhook_delay_seconds,
        )
        self.settings = self._defaults.model_copy()
        self.attempts = config.webhook_attempts
        self.counts: Counter[str] = Counter()
        self.recent: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def configure(self, settings: WebhookSettings) -> None:
        self.settings = settings

    def reset(self) -> None:
        self.settings = self._defaults.model_copy()
        self.counts.clear()
        self.recent.clear()

    def stats(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "recent": list(self.recent)}

    def dispatch(self, events: list[Event]) -> None:
        """Schedule deliveries; must be called on the event loop."""
        settings = self.settings
        for event in events:
            self.counts["events"] += 1
            if settings.url is None:
                continue
            task = asyncio.get_running_loop().create_task(self._deliver(event, settings))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, event: Event, settings: WebhookSettings) -> None:
        payload = event_payload(event)
        webhook_id = ids.new_id("wh_")
        entry = {"webhook_id": webhook_id, "type": event.type, "object_id": event.object_id}
        if settings.mode is WebhookMode.DROP:
            self._note(entry, "dropped")
            return
        if settings.mode is WebhookMode.DELAY:
            await asyncio.sleep(settings.delay_seconds)
        body = json.dumps(payload)
        copies = 2 if settings.mode is WebhookMode.DUPLICATE else 1
        for _ in range(copies):
            delivered = await self._send_with_retries(settings, webhook_id, body)
            self._note(entry, "delivered" if delivered else "failed")

    async def _send_with_retries(
        self, settings: WebhookSettings, webhook_id: str, body: str
    ) -> bool:
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(RETRY_BACKOFF * 2 ** (attempt - 1))
            self.counts["attempts"] += 1
            if await self._send_once(settings, webhook_id, body):
                return True
        return False

    async def _send_once(self, settings: WebhookSettings, webhook_id: str, body: str) -> bool:
        assert settings.url is not None
        timestamp = int(time.time())
        headers = {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp)}
        headers["content-type"] = "application/json"
        if settings.secret:
            headers["webhook-signature"] = sign(settings.secret, webhook_id, timestamp, body)
        try:
            answer = await self._http().post(settings.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("webhook delivery failed", url=settings.url, error=str(exc))
            return False
        return 200 <= answer.status_code < 300

    def _note(self, entry: dict[str, Any], outcome: str) -> None:
        self.counts[outcome] += 1
        self.recent.append({**entry, "outcome": outcome})
        del self.recent[:-RECENT]

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=5.0)
        return self._client

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
