"""The approved side effect of a job: deliver its result to an outbox, or POST it signed.

At most one delivery per job: the ledger's claim is taken first and the outcome recorded after.
If a worker dies between the two, the retry finds a claim with no outcome and delivers again:
delivery is at least once. Both deliveries are keyed by the job id (the outbox file name, the
`Idempotency-Key` header), so a receiver that dedupes on the key takes it once.

Where a delivery may go is the worker's policy (`DeliveryPolicy`, from settings): outbox files
under the outbox root only, webhooks to public https targets or allow-listed hosts, checked
again here after resolving the host; the signing key comes from the worker's named secrets.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import beating
from laneway.background import RUN_SIDE_EFFECT, SideEffectRequest
from laneway.destinations import DestinationRefused, WebhookPolicy, inside, outbox_destination
from laneway.jobs import DeliverToOutbox, PostWebhook
from laneway.pricing import plain_usd
from laneway.settings import Settings
from laneway.status import EventKind
from store.artifacts import ArtifactStore
from store.ledger.repository import Ledger

SIGNATURE_HEADER = "Laneway-Signature"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
DESTINATION_REFUSED: Final = "DestinationRefused"


@dataclass(frozen=True)
class DeliveryPolicy:
    """Where this worker delivers side effects, and with which signing keys."""

    outbox_root: Path
    webhooks: WebhookPolicy = field(default_factory=WebhookPolicy)
    secrets: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        return cls(
            outbox_root=settings.outbox_path,
            webhooks=WebhookPolicy(tuple(settings.webhook_allow_hosts)),
            secrets={
                name: value.get_secret_value() for name, value in settings.webhook_secrets.items()
            },
        )

    def outbox_directory(self, effect: DeliverToOutbox, job_id: str) -> Path:
        """The directory the job's files go in, checked to stay under the outbox root."""
        try:
            if effect.path is not None:
                target = outbox_destination(self.outbox_root, effect.path, f"{job_id}.json")
            else:  # a job started before outbox roots: delivered only if under the root
                target = inside(self.outbox_root, Path(str(effect.directory)) / f"{job_id}.json")
        except DestinationRefused as error:
            raise ApplicationError(
                str(error), type=DESTINATION_REFUSED, non_retryable=True
            ) from None
        return target.parent

    def signing_key(self, effect: PostWebhook) -> str:
        if effect.secret_ref is not None:
            key = self.secrets.get(effect.secret_ref)
            if key is None:
                raise ApplicationError(
                    f"no webhook secret named {effect.secret_ref!r} in this worker's "
                    "LANEWAY_WEBHOOK_SECRETS",
                    type=DESTINATION_REFUSED,
                    non_retryable=True,
                )
            return key
        if effect.secret is None:
            raise ApplicationError("the webhook has no signing secret", non_retryable=True)
        return effect.secret.get_secret_value()  # a job started before secret references

    async def check_webhook(self, effect: PostWebhook) -> None:
        try:
            await self.webhooks.check(effect.url)
        except DestinationRefused as error:
            raise ApplicationError(
                str(error), type=DESTINATION_REFUSED, non_retryable=True
            ) from None


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: a receiver checks both."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".part") as part:
        part.write(data)
        part.flush()
        os.fsync(part.fileno())
    os.replace(part.name, path)


async def post_signed(
    http: httpx.AsyncClient,
    policy: DeliveryPolicy,
    effect: PostWebhook,
    job_id: str,
    body: bytes,
) -> str:
    """POST `body` signed, keyed by the job id; a 4xx that retrying cannot fix is final.

    The target is checked against the policy first, after resolving its host; redirects are
    not followed, so an allowed target cannot hand the request on to an internal one."""
    await policy.check_webhook(effect)
    headers = {
        "Content-Type": "application/json",
        IDEMPOTENCY_HEADER: job_id,
        SIGNATURE_HEADER: sign(policy.signing_key(effect), int(time.time()), body),
    }
    try:
        answer = await http.post(effect.url, content=body, headers=headers, follow_redirects=False)
    except httpx.HTTPError as error:
        raise ApplicationError(f"could not reach {effect.destination()}: {error}") from error
    if answer.is_success:
        return effect.destination()
    message = f"{effect.destination()} answered {answer.status_code}"
    final = 400 <= answer.status_code < 500 and answer.status_code not in (408, 409, 429)
    raise ApplicationError(message, non_retryable=final)


@dataclass
class SideEffectActivities:
    ledger: Ledger
    artifacts: ArtifactStore
    http: httpx.AsyncClient
    policy: DeliveryPolicy

    @activity.defn(name=RUN_SIDE_EFFECT)
    async def run_side_effect(self, request: SideEffectRequest) -> str:
        effect = request.spec.side_effect
        if effect is None:
            raise ApplicationError("the job has no side effect", non_retryable=True)
        job_id = request.job_id
        claimed = await asyncio.to_thread(self.ledger.claim_side_effect, job_id, effect.kind)
        if not claimed:
            earlier = await asyncio.to_thread(self.ledger.get_side_effect, job_id)
            if earlier is not None and earlier.outcome is not None:
                return earlier.outcome  # delivered before: never twice
        async with beating():  # a worker that dies mid-delivery shows within ~30 s
            body = await asyncio.to_thread(self._delivery_body, request)
            if isinstance(effect, DeliverToOutbox):
                where = await asyncio.to_thread(self._deliver_to_outbox, effect, job_id, body)
            else:
                where = await self._post(effect, job_id, body)
        await asyncio.to_thread(self._record_delivery, job_id, where)
        activity.logger.info("side effect ran", extra={"job_id": job_id, "where": where})
        return where

    def _delivery_body(self, request: SideEffectRequest) -> bytes:
        result = request.result
        stored = self.ledger.get_result(request.job_id, result.attempt)
        if stored is None:
            raise ApplicationError(f"no stored result for job {request.job_id}")
        if stored.output is not None:
            output = self.artifacts.read_bytes(stored.output).decode()
        else:
            output = stored.inline_output or ""
        document: dict[str, Any] = {
            "job_id": request.job_id,
            "job_type": request.spec.job_type,
            "workspace": request.spec.workspace,
            "requested_by": request.spec.requested_by,
            "attempt": result.attempt,
            "model": result.model,
            "output": output,
            "usage": result.usage.model_dump(),
            "cost_usd": None if result.cost_usd is None else plain_usd(result.cost_usd),
        }
        return json.dumps(document, ensure_ascii=False, indent=2).encode()

    def _deliver_to_outbox(self, effect: DeliverToOutbox, job_id: str, body: bytes) -> str:
        path = self.policy.outbox_directory(effect, job_id) / f"{job_id}.json"
        write_atomically(path, body)
        return str(path)

    async def _post(self, effect: PostWebhook, job_id: str, body: bytes) -> str:
        return await post_signed(self.http, self.policy, effect, job_id, body)

    def _record_delivery(self, job_id: str, where: str) -> None:
        self.ledger.finish_side_effect(job_id, "delivered", note=where)
        self.ledger.record_event(
            job_id, EventKind.SIDE_EFFECT_RAN, f"{job_id}/side-effect", note=where
        )
