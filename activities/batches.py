"""Activities that talk to the Files and Batch APIs for one shard of a batch job.

Submitting records its intent in the ledger first and sends idempotency keys derived from the
shard workflow's id, so a retried submit finds the same file and batch instead of paying
twice. Waiting is a poll that fails with a benign error while nothing changed; Temporal
retries it on the job's backoff schedule, so a 24-hour batch adds no history while it runs.
Ingest streams the output and error files into the artifact store and lands each result line
on its record in the ledger; repeating it after a crash changes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types import Batch
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.batch_input import JSONL
from activities.heartbeat import beating, in_thread
from activities.provider_errors import provider_call
from laneway.batch import (
    BATCH_UNCHANGED,
    CANCEL_BATCH,
    GET_BATCH,
    INGEST_SHARD,
    SUBMIT_SHARD,
    WAIT_FOR_BATCH_CHANGE,
    BatchSnapshot,
    IngestRequest,
    RecordState,
    ShardOutcome,
    SubmitShardRequest,
    WaitForBatchRequest,
)
from laneway.jobs import ArtifactRef, Usage
from store.artifacts import ArtifactStore
from store.ledger.batch_records import BatchRecords, RecordResult
from store.ledger.repository import Ledger

MAX_ERROR_MESSAGE_CHARS = 1000
RECENT_SECONDS = 6 * 3600  # how far back a retried submit looks for its own batch
RETRYABLE_HTTP_STATUSES = frozenset({408, 409, 429})
RETRYABLE_ERROR_CODES = frozenset(
    {"batch_expired", "batch_cancelled", "timeout", "server_error", "rate_limit_exceeded"}
)


def _metadata(request: SubmitShardRequest) -> dict[str, str]:
    """Names the job, round, shard and submission: how a lost create is found again."""
    return {
        "laneway_job_id": request.job_id,
        "laneway_round": str(request.shard.round),
        "laneway_shard": str(request.shard.index),
        "laneway_submission": str(request.submission),
    }


def _file_name(request: SubmitShardRequest) -> str:
    """The shard's input file name at the provider: names the job, round and shard."""
    shard = request.shard
    return f"{request.job_id}-r{shard.round}-s{shard.index}.jsonl"


def snapshot_of(batch: Batch) -> BatchSnapshot:
    counts = batch.request_counts
    errors = batch.errors.data if batch.errors and batch.errors.data else []
    return BatchSnapshot(
        batch_id=batch.id,
        status=batch.status,
        total=counts.total if counts else 0,
        completed=counts.completed if counts else 0,
        failed=counts.failed if counts else 0,
        output_file_id=batch.output_file_id,
        error_file_id=batch.error_file_id,
        error_codes=[e.code or "unknown" for e in errors[:5]],
        error_messages=[(e.message or "")[:MAX_ERROR_MESSAGE_CHARS] for e in errors[:5]],
    )


# ---- reading result lines ------------------------------------------------------------------


def usage_of_body(body: dict[str, Any]) -> Usage:
    """Usage from a response body of any batch endpoint (Responses, Chat, Embeddings)."""
    usage = body.get("usage") or {}
    if not isinstance(usage, dict):
        return Usage()
    if "input_tokens" in usage:  # Responses
        given_in, given_out = usage.get("input_tokens", 0), usage.get("output_tokens", 0)
        cached = (usage.get("input_tokens_details") or {}).get("cached_tokens", 0)
        reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens", 0)
    else:  # Chat completions and embeddings
        given_in, given_out = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
        reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens", 0)
    return Usage(
        input_tokens=given_in or 0,
        cached_input_tokens=min(cached or 0, given_in or 0),
        output_tokens=given_out or 0,
        reasoning_tokens=min(reasoning or 0, given_out or 0),
    )


def result_of_line(
    item: dict[str, Any], output: ArtifactRef, offset: int, length: int
) -> RecordResult:
    """One line of an output or error file as the ledger keeps it."""
    custom_id = str(item["custom_id"])
    response = item.get("response")
    error = item.get("error")
    if isinstance(response, dict) and int(response.get("status_code", 0)) < 400 and not error:
        body = response.get("body") or {}
        return RecordResult(
            custom_id=custom_id,
            state=RecordState.SUCCEEDED,
            output_uri=output.uri,
            output_offset=offset,
            output_length=length,
            usage=usage_of_body(body if isinstance(body, dict) else {}),
        )
    if isinstance(error, dict):
        code = str(error.get("code") or "unknown_error")
        return _failure(
            custom_id, code, str(error.get("message") or ""), code in RETRYABLE_ERROR_CODES
        )
    status = int((response or {}).get("status_code", 0))
    body = (response or {}).get("body") or {}
    detail = body.get("error") if isinstance(body, dict) else None
    detail = detail if isinstance(detail, dict) else {}
    code = str(detail.get("code") or detail.get("type") or f"http_{status}")
    retryable = status >= 500 or status in RETRYABLE_HTTP_STATUSES
    return _failure(custom_id, code, f"{status}: {detail.get('message') or ''}".strip(), retryable)


def _failure(custom_id: str, code: str, message: str, retryable: bool) -> RecordResult:
    return RecordResult(
        custom_id=custom_id,
        state=RecordState.FAILED,
        retryable=retryable,
        error_code=code[:128],
        error_message=message[:MAX_ERROR_MESSAGE_CHARS],
    )


@dataclass
class LineTally:
    lines: int = 0
    unreadable: int = 0


def results_in_file(
    store: ArtifactStore, ref: ArtifactRef, tally: LineTally
) -> Iterator[RecordResult]:
    """Every readable result line of a stored output or error file, with its byte range."""
    offset = 0
    with store.open(ref) as handle:
        for raw in handle:
            start, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            tally.lines += 1
            try:
                item = json.loads(raw)
                yield result_of_line(item, ref, start, len(raw.rstrip(b"\r\n")))
            except (ValueError, KeyError, TypeError):
                tally.unreadable += 1  # counted as unexpected; its record ends up missing


# ---- the activities -------------------------------------------------------------------------


@dataclass
class BatchProviderActivities:
    openai: AsyncOpenAI
    ledger: Ledger
    records: BatchRecords
    artifacts: ArtifactStore

    @activity.defn(name=SUBMIT_SHARD)
    async def submit_batch_shard(self, request: SubmitShardRequest) -> BatchSnapshot:
        """Upload the shard and create its batch, once per idempotency key.

        A retry first looks for the batch an earlier try may have created (the ledger's
        intent, then the provider's batches by their metadata), so a create whose answer was
        lost is found again rather than paid for twice; and it creates the batch from the file
        an earlier try uploaded (`_uploaded_file`) rather than uploading the shard again.
        """
        intent = await in_thread(
            lambda: self.ledger.record_provider_intent(
                request.job_id,
                request.idempotency_key,
                operation="batches.create",
                attempt=request.shard.round,
            )
        )
        async with beating():  # the upload can be large: a dead worker shows within ~30 s
            earlier = await self._find_created(request, intent.provider_id)
            batch = earlier or await self._create(request)
        await in_thread(
            lambda: self.ledger.resolve_provider_intent(request.idempotency_key, batch.id)
        )
        activity.logger.info(
            "batch created" if earlier is None else "batch found again",
            extra={"job_id": request.job_id, "batch_id": batch.id, "shard": request.shard.index},
        )
        return snapshot_of(batch)

    async def _create(self, request: SubmitShardRequest) -> Batch:
        input_file_id = await self._uploaded_file(request)
        with provider_call():
            return await self.openai.batches.create(
                input_file_id=input_file_id,
                endpoint=request.endpoint,  # type: ignore[arg-type]
                completion_window="24h",
                metadata=_metadata(request),
                extra_headers={"Idempotency-Key": request.idempotency_key},
            )

    async def _uploaded_file(self, request: SubmitShardRequest) -> str:
        """The provider's id of the shard's input file, uploading it only the first time.

        The upload is an intent of its own in the ledger, resolved with the file id before
        the batch is created; so a retry after a failed create (a 5xx, a lost answer) reuses
        the file. A try that uploaded and died before the ledger heard of it is covered by
        looking for the file among the provider's recent batch files, by name and size.
        """
        key = f"{request.idempotency_key}/file"
        intent = await in_thread(
            lambda: self.ledger.record_provider_intent(
                request.job_id, key, operation="files.create", attempt=request.shard.round
            )
        )
        if intent.provider_id is not None:
            return intent.provider_id
        file_id = await self._find_uploaded(request) or await self._upload(request, key)
        await in_thread(lambda: self.ledger.resolve_provider_intent(key, file_id, add_to_job=False))
        return file_id

    async def _upload(self, request: SubmitShardRequest, idempotency_key: str) -> str:
        with self.artifacts.open(request.shard.file) as handle, provider_call():
            uploaded = await self.openai.files.create(
                file=(_file_name(request), handle, JSONL),
                purpose="batch",
                extra_headers={"Idempotency-Key": idempotency_key},
            )
        return uploaded.id

    async def _find_uploaded(self, request: SubmitShardRequest) -> str | None:
        """The file an earlier try of this submission uploaded, if any (only on a retry)."""
        if activity.info().attempt == 1:
            return None
        name, size = _file_name(request), request.shard.file.size_bytes
        with provider_call():
            async for file in self.openai.files.list(purpose="batch", order="desc", limit=100):
                if file.filename == name and file.bytes == size:
                    return file.id
                if file.created_at < time.time() - RECENT_SECONDS:
                    break  # newest first: older files cannot be this submission's
        return None

    async def _find_created(
        self, request: SubmitShardRequest, batch_id: str | None
    ) -> Batch | None:
        """The batch this submission already created, if any (only on a retry)."""
        if batch_id is not None:
            with provider_call():
                return await self.openai.batches.retrieve(batch_id)
        if activity.info().attempt == 1:
            return None
        wanted = _metadata(request)
        with provider_call():
            async for batch in self.openai.batches.list(limit=100):
                if batch.metadata == wanted:
                    return batch
                if batch.created_at < time.time() - RECENT_SECONDS:
                    break  # newest first: older batches cannot be this submission's
        return None

    @activity.defn(name=WAIT_FOR_BATCH_CHANGE)
    async def wait_for_batch_change(self, request: WaitForBatchRequest) -> BatchSnapshot:
        snapshot = await self.get_batch(request.batch_id)
        if snapshot.status == request.last_status:
            raise ApplicationError(
                f"batch {request.batch_id} is still {snapshot.status}",
                type=BATCH_UNCHANGED,
                category=ApplicationErrorCategory.BENIGN,
            )
        return snapshot

    @activity.defn(name=GET_BATCH)
    async def get_batch(self, batch_id: str) -> BatchSnapshot:
        with provider_call():
            batch = await self.openai.batches.retrieve(batch_id)
        return snapshot_of(batch)

    @activity.defn(name=CANCEL_BATCH)
    async def cancel_batch(self, batch_id: str) -> BatchSnapshot:
        """Cancel at the provider; a batch that already ended is simply reported."""
        try:
            with provider_call():
                batch = await self.openai.batches.cancel(batch_id)
        except ApplicationError as error:
            if not isinstance(error.__cause__, openai.BadRequestError):
                raise
            return await self.get_batch(batch_id)
        return snapshot_of(batch)

    @activity.defn(name=INGEST_SHARD)
    async def ingest_batch_shard(self, request: IngestRequest) -> ShardOutcome:
        """Keep the batch's files and land every result line on its record."""
        batch = request.batch
        async with beating():  # downloads heartbeat too, against the ingest's heartbeat timeout
            output = await self._download(batch.output_file_id if batch else None)
            errors = await self._download(batch.error_file_id if batch else None)
        return await in_thread(lambda: self._ingest(request, output, errors))

    async def _download(self, file_id: str | None) -> ArtifactRef | None:
        if file_id is None:
            return None
        with self.artifacts.writer(JSONL) as writer, provider_call():
            async with self.openai.files.with_streaming_response.content(file_id) as answer:
                async for chunk in answer.iter_bytes():
                    writer.write(chunk)
        return writer.ref

    def _ingest(
        self, request: IngestRequest, output: ArtifactRef | None, errors: ArtifactRef | None
    ) -> ShardOutcome:
        shard, batch = request.shard, request.batch
        tally = LineTally()
        for ref in (output, errors):
            if ref is not None and batch is not None:
                results = results_in_file(self.artifacts, ref, tally)
                for _ in self.records.record_results(
                    request.job_id, shard.round, shard.index, batch.batch_id, results
                ):
                    pass
        self._close_unanswered(request)
        counts = self.records.counts(request.job_id, round=shard.round, shard=shard.index)
        missing = self.records.count_state(
            request.job_id, shard.round, shard.index, RecordState.MISSING
        )
        answered = counts.succeeded + counts.failed - missing
        return ShardOutcome(
            round=shard.round,
            index=shard.index,
            batch_ids=[batch.batch_id] if batch else [],
            final_status=batch.status if batch else "not_submitted",
            succeeded=counts.succeeded,
            failed=counts.failed,
            missing=missing,
            unexpected=max(0, tally.lines - answered),
            usage=self.records.usage(request.job_id, round=shard.round, shard=shard.index),
            output_file=output,
            error_file=errors,
        )

    def _close_unanswered(self, request: IngestRequest) -> None:
        """Records the batch gave no result for: failed with the batch, or missing."""
        shard, batch = request.shard, request.batch
        state, retryable = RecordState.MISSING, True
        if batch is None:
            code, message = "not_submitted", f"stopped before submission ({request.stop_reason})"
        elif request.batch_failure is not None:
            state, retryable = RecordState.FAILED, request.batch_failure_retryable
            code, message = "batch_failed", request.batch_failure
        elif request.stop_reason is not None and batch.status == "cancelled":
            code = "batch_cancelled"
            message = f"the batch was cancelled ({request.stop_reason}) before this record ran"
        else:
            code = "missing_result"
            message = f"the batch ended {batch.status} without a result for this record"
        self.records.fail_pending(
            request.job_id,
            shard.round,
            shard.index,
            state=state,
            retryable=retryable,
            code=code,
            message=message[:MAX_ERROR_MESSAGE_CHARS],
            batch_id=batch.batch_id if batch else None,
        )
