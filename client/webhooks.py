"""OpenAI's webhooks, taken in: verify, dedupe, find the job, wake its workflow.

A webhook only says "look now": the workflow asks the provider itself (the webhook's body is
never trusted for the outcome), and keeps polling slowly as a safety net, so a lost webhook
delays a job by one poll interval (settings.webhook_poll_interval) at most.

    verify  the SDK's `webhooks.unwrap` (signature and a timestamp within 5 minutes): else 400
    dedupe  the ledger's webhook deliveries, keyed by `webhook-id`: a replay changes nothing
    find    the job through the ledger's provider ids (response id or batch id)
    signal  `provider_event(provider_id)`; if that fails the claim is released and the
            answer is 503, so the provider's own retry of the delivery gets through
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Final

import structlog
from fastapi import HTTPException
from openai import InvalidWebhookSignatureError, OpenAI
from temporalio.service import RPCError

from client.jobs import JobActionRefused, JobNotFoundError, LanewayClient, LanewayClientError
from laneway.settings import Settings
from store.ledger.engine import create_ledger_engine
from store.ledger.webhook_deliveries import WebhookDeliveries

log = structlog.get_logger(__name__)

JOB_EVENT_PREFIXES: Final = ("response.", "batch.")
KEEP_DELIVERIES: Final = timedelta(days=7)


class WebhookReceiver:
    def __init__(self, settings: Settings, jobs: LanewayClient) -> None:
        self._secret = settings.openai_webhook_secret
        # Only its webhook verification is used: no request is ever sent with this client.
        self._verifier = OpenAI(api_key="unused-for-verification", webhook_secret=self._secret)
        self._jobs = jobs
        self._deliveries = WebhookDeliveries(create_ledger_engine(settings.ledger_url))

    async def receive(self, body: bytes, headers: dict[str, str]) -> str:
        """Take in one delivery; says what came of it: signalled, duplicate, unknown, ended
        or ignored (an event about something no job follows)."""
        if self._secret is None:
            raise HTTPException(404, "webhooks are off: set OPENAI_WEBHOOK_SECRET to take them")
        try:
            event = self._verifier.webhooks.unwrap(body.decode(), headers)
        except (InvalidWebhookSignatureError, ValueError) as error:
            log.warning("webhook refused", reason=str(error))
            raise HTTPException(400, f"webhook refused: {error}") from None
        webhook_id = headers.get("webhook-id", "")
        provider_id = getattr(event.data, "id", None)
        if not event.type.startswith(JOB_EVENT_PREFIXES) or not isinstance(provider_id, str):
            return "ignored"  # e.g. realtime or eval events: no Laneway job follows those
        claimed = await asyncio.to_thread(
            self._deliveries.claim, webhook_id, event.type, provider_id
        )
        if not claimed:
            log.info("webhook duplicate", webhook_id=webhook_id, type=event.type)
            return "duplicate"
        try:
            job_id = await self._jobs.notify_provider_event(provider_id)
        except (JobNotFoundError, JobActionRefused):
            return "ended"  # the job has ended: nothing is waiting for this news
        except (RPCError, LanewayClientError) as error:
            await asyncio.to_thread(self._deliveries.release, webhook_id)
            raise HTTPException(503, "could not reach the job; deliver again later") from error
        if job_id is None:
            log.info("webhook for no known job", type=event.type, provider_id=provider_id)
            return "unknown"
        log.info("webhook signalled", type=event.type, job_id=job_id, provider_id=provider_id)
        return "signalled"

    def prune(self) -> int:
        """Forget deliveries older than a week: far past any signature the SDK still accepts."""
        return self._deliveries.prune(KEEP_DELIVERIES)

    def close(self) -> None:
        self._deliveries.engine.dispose()
