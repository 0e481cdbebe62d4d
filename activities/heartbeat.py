"""Long work in an async activity, with heartbeats while it runs; errors no retry can fix.

File and ledger work (validation, sharding, ingest) runs in a thread so the worker's event
loop stays free; the loop heartbeats meanwhile, so a worker that dies is noticed within the
activity's heartbeat timeout (about 30 s) and the activity is retried elsewhere. Async work
that can take long (downloads, uploads, deliveries) heartbeats the same way (`beating`).

An artifact that is missing, malformed or corrupt, or work that runs out of memory, fails
the same way on every try: it becomes a non-retryable `ApplicationError` that says what
went wrong, so a poison input ends its job instead of being retried without end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from store.artifacts import ArtifactError

T = TypeVar("T")
HEARTBEAT_EVERY_SECONDS = 2.0
ARTIFACT_ERROR = "ArtifactError"
OUT_OF_MEMORY = "OutOfMemory"


@contextlib.asynccontextmanager
async def beating() -> AsyncIterator[None]:
    """Heartbeat every couple of seconds while the body runs; final errors made final."""

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(HEARTBEAT_EVERY_SECONDS)

    beats = asyncio.create_task(beat())
    try:
        with final_errors():
            yield
    finally:
        beats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beats


@contextlib.contextmanager
def final_errors() -> Iterator[None]:
    """Artifact errors and MemoryError as non-retryable ApplicationErrors."""
    try:
        yield
    except ArtifactError as error:
        raise ApplicationError(str(error), type=ARTIFACT_ERROR, non_retryable=True) from None
    except MemoryError:
        raise ApplicationError(
            "the work ran out of memory; it would on every try",
            type=OUT_OF_MEMORY,
            non_retryable=True,
        ) from None


async def in_thread(work: Callable[[], T]) -> T:
    async with beating():
        return await asyncio.to_thread(work)
