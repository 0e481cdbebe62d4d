"""Long blocking work in an async activity, with heartbeats while it runs.

File and ledger work (validation, sharding, ingest) runs in a thread so the worker's event
loop stays free; the loop heartbeats meanwhile, so a worker that dies is noticed within the
activity's heartbeat timeout and the activity is retried elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TypeVar

from temporalio import activity

T = TypeVar("T")
HEARTBEAT_EVERY_SECONDS = 2.0


async def in_thread(work: Callable[[], T]) -> T:
    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(HEARTBEAT_EVERY_SECONDS)

    beating = asyncio.create_task(beat())
    try:
        return await asyncio.to_thread(work)
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
