"""The approved side effect of a job: deliver its result to an outbox, or POST it signed.

At most one delivery per job: the ledger's claim is taken first and the outcome recorded after.
If a worker dies between the two, the retry finds a claim with no outcome and delivers again;
both deliveries are keyed by the job id (the outbox file name, the `Idempotency-Key` header),
so the receiver sees one delivery.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import beating
from laneway.background import RUN_SIDE_EFFECT, SideEffectRequest
from laneway.jobs import DeliverToOutbox, PostWebhook
from laneway.pricing import plain_usd
from laneway.status import EventKind
from store.artifacts import ArtifactStore
from store.ledger.repository import Ledger

SIGNATURE_HEADER = "Laneway-Signature"


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
    http: httpx.AsyncClient, effect: PostWebhook, job_id: str, body: bytes
) -> str:
    """POST `body` signed, keyed by the job id; a 4xx that retrying cannot fix is final."""
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": job_id,
        SIGNATURE_HEADER: sign(effect.secret.get_secret_value(), int(time.time()), body),
    }
    try:
        answer = await http.post(effect.url, content=body, headers=headers)
    except httpx.HTTPError as error:
        raise ApplicationError(f"could not reach {effect.url}: {error}") from error
    if answer.is_success:
        return effect.url
    message = f"{effect.url} answered {answer.status_code}"
    final = 400 <= answer.status_code < 500 and answer.status_code not in (408, 409, 429)
    raise ApplicationError(message, non_retryable=final)


@dataclass
class SideEffectActivities:
    ledger: Ledger
    artifacts: ArtifactStore
    http: httpx.AsyncClient

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

    @staticmethod
    def _deliver_to_outbox(effect: DeliverToOutbox, job_id: str, body: bytes) -> str:
        path = Path(effect.directory) / f"{job_id}.json"
        write_atomically(path, body)
        return str(path)

    async def _post(self, effect: PostWebhook, job_id: str, body: bytes) -> str:
        return await post_signed(self.http, effect, job_id, body)

    def _record_delivery(self, job_id: str, where: str) -> None:
        self.ledger.finish_side_effect(job_id, "delivered", note=where)
        self.ledger.record_event(
            job_id, EventKind.SIDE_EFFECT_RAN, f"{job_id}/side-effect", note=where
        )
