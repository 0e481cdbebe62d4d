"""Activities that talk to the Responses API in background mode.

Each call goes through `provider_call()`, so a failure carries Laneway's retry decision.
The wait activity returns only when the provider's status differs from the one the workflow
already knows; while nothing changes it fails with a benign error and Temporal retries it on
the workflow's backoff schedule, which keeps hours of waiting out of the workflow's history.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.responses import Response
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.provider_errors import provider_call
from laneway.background import (
    CANCEL_RESPONSE,
    GET_RESPONSE,
    RESPONSE_UNCHANGED,
    START_RESPONSE,
    STORE_RESULT,
    WAIT_FOR_RESPONSE_CHANGE,
    ResponseSnapshot,
    ResultSummary,
    StartResponseRequest,
    StoreResultRequest,
    WaitForChangeRequest,
)
from laneway.jobs import JobSpec, Usage
from laneway.pricing import UnknownModelPrice, cost, format_usd, price_tier
from laneway.status import EventKind
from store.artifacts import ArtifactStore
from store.ledger.repository import Ledger


def usage_of(response: Response) -> Usage | None:
    if response.usage is None:
        return None
    return Usage(
        input_tokens=response.usage.input_tokens,
        cached_input_tokens=response.usage.input_tokens_details.cached_tokens,
        output_tokens=response.usage.output_tokens,
        reasoning_tokens=response.usage.output_tokens_details.reasoning_tokens,
    )


def snapshot_of(response: Response) -> ResponseSnapshot:
    """The parts of a Response the workflow needs; never its text."""
    return ResponseSnapshot(
        response_id=response.id,
        status=response.status or "queued",
        model=response.model,
        error_code=response.error.code if response.error else None,
        error_message=response.error.message if response.error else None,
        incomplete_reason=(
            response.incomplete_details.reason if response.incomplete_details else None
        ),
        usage=usage_of(response),
    )


def cost_or_none(usage: Usage, model: str, tier: str) -> Decimal | None:
    """The cost, or None for a model without a known price (recorded, not guessed)."""
    try:
        return cost(usage, model, tier)
    except UnknownModelPrice:
        activity.logger.warning("no price known for model", extra={"model": model})
        return None


def billed_tier(reported: str | None, requested: str) -> str:
    """The tier the provider says it served at; the requested one if it names none we know."""
    try:
        return price_tier(reported or requested).value
    except UnknownModelPrice:
        return price_tier(requested).value


@dataclass
class ResponseActivities:
    openai: AsyncOpenAI
    ledger: Ledger
    artifacts: ArtifactStore

    @activity.defn(name=START_RESPONSE)
    async def start_background_response(self, request: StartResponseRequest) -> ResponseSnapshot:
        """Create the response once: the intent is recorded first, the key makes retries safe
        where the provider honours it.

        A retry whose earlier try is known to have created the response (the ledger resolved
        the intent) takes that one. A retry after an uncertain try creates again: a provider
        that ignores the key may now run two responses, and the Responses API cannot list
        them to find the first. That possible duplicate is recorded on the job (its audit
        trail; `store_response_result` adds its likely cost), never hidden.
        """
        intent = await asyncio.to_thread(
            self.ledger.record_provider_intent,
            request.job_id,
            request.idempotency_key,
            attempt=request.attempt,
        )
        if intent.provider_id is not None:
            return await self.get_response(intent.provider_id)
        uncertain = activity.info().attempt > 1
        arguments = await self._create_arguments(request)
        with provider_call():
            response = await self.openai.responses.create(
                **arguments, extra_headers={"Idempotency-Key": request.idempotency_key}
            )
        await asyncio.to_thread(
            self.ledger.resolve_provider_intent, request.idempotency_key, response.id
        )
        if uncertain:
            await asyncio.to_thread(
                lambda: self.ledger.record_event(
                    request.job_id,
                    EventKind.POSSIBLE_DUPLICATE,
                    f"{request.idempotency_key}/possible-duplicate",
                    note=(
                        f"{_duplicate_prefix(request.attempt)} an earlier try of this create "
                        f"got no answer; the provider may have made a second response besides "
                        f"{response.id}, which it cannot list, so it may be billed too"
                    ),
                )
            )
        activity.logger.info(
            "background response created",
            extra={"job_id": request.job_id, "response_id": response.id},
        )
        return snapshot_of(response)

    @activity.defn(name=WAIT_FOR_RESPONSE_CHANGE)
    async def wait_for_response_change(self, request: WaitForChangeRequest) -> ResponseSnapshot:
        snapshot = await self.get_response(request.response_id)
        if snapshot.status == request.last_status:
            raise ApplicationError(
                f"response {request.response_id} is still {snapshot.status}",
                type=RESPONSE_UNCHANGED,
                category=ApplicationErrorCategory.BENIGN,
            )
        return snapshot

    @activity.defn(name=GET_RESPONSE)
    async def get_response(self, response_id: str) -> ResponseSnapshot:
        with provider_call():
            response = await self.openai.responses.retrieve(response_id)
        return snapshot_of(response)

    @activity.defn(name=CANCEL_RESPONSE)
    async def cancel_response(self, response_id: str) -> ResponseSnapshot:
        """Cancel at the provider; a response that already ended is simply reported."""
        try:
            with provider_call():
                response = await self.openai.responses.cancel(response_id)
        except ApplicationError as error:
            if not isinstance(error.__cause__, openai.BadRequestError):
                raise
            return await self.get_response(response_id)
        return snapshot_of(response)

    @activity.defn(name=STORE_RESULT)
    async def store_response_result(self, request: StoreResultRequest) -> ResultSummary:
        """Keep the output (partial, if the response was cut short), its usage and its cost."""
        with provider_call():
            response = await self.openai.responses.retrieve(request.response_id)
        usage = usage_of(response) or Usage()
        text = response.output_text
        tier = billed_tier(response.service_tier, request.service_tier)
        output = None
        if not self.ledger.fits_inline(text):
            output = await asyncio.to_thread(
                self.artifacts.put_bytes, text.encode(), "text/plain; charset=utf-8"
            )
        summary = ResultSummary(
            attempt=request.attempt,
            output=output,
            output_chars=len(text),
            usage=usage,
            model=response.model,
            tier=tier,
            cost_usd=cost_or_none(usage, response.model, tier),
        )
        await asyncio.to_thread(
            lambda: self.ledger.record_result(
                request.job_id,
                request.attempt,
                usage=usage,
                model=summary.model,
                tier=tier,
                cost_usd=summary.cost_usd,
                output=output,
                inline_output=None if output else text,
            )
        )
        await asyncio.to_thread(self._price_possible_duplicate, request, summary)
        return summary

    def _price_possible_duplicate(
        self, request: StoreResultRequest, summary: ResultSummary
    ) -> None:
        """A possible duplicate of this attempt's create gets its likely cost in the trail."""
        prefix = _duplicate_prefix(request.attempt)
        events = self.ledger.list_events(request.job_id)
        if not any(
            e.kind == EventKind.POSSIBLE_DUPLICATE and e.note.startswith(prefix) for e in events
        ):
            return
        price = "an unknown amount" if summary.cost_usd is None else format_usd(summary.cost_usd)
        self.ledger.record_event(
            request.job_id,
            EventKind.POSSIBLE_DUPLICATE,
            f"{request.job_id}/attempt-{request.attempt}/possible-duplicate-cost",
            note=(
                f"{prefix} the possible duplicate of {request.response_id} would cost about "
                f"{price} (the same request), on top of this attempt's cost"
            ),
        )

    async def _create_arguments(self, request: StartResponseRequest) -> dict[str, Any]:
        spec: JobSpec = request.spec
        job_input = spec.input
        text = job_input.text
        if text is None and job_input.artifact is not None:
            data = await asyncio.to_thread(self.artifacts.read_bytes, job_input.artifact)
            text = data.decode()
        arguments: dict[str, Any] = {
            "model": job_input.model,
            "input": text,
            "background": True,
            "metadata": {"laneway_job_id": request.job_id, "laneway_attempt": str(request.attempt)},
        }
        if job_input.instructions:
            arguments["instructions"] = job_input.instructions
        if job_input.max_output_tokens:
            arguments["max_output_tokens"] = job_input.max_output_tokens
        if job_input.service_tier == "flex":
            arguments["service_tier"] = "flex"
        return arguments


def _duplicate_prefix(attempt: int) -> str:
    return f"attempt {attempt}:"
