"""The emulator's moving parts wired together, and the tick that moves them by the clock."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Annotated

import structlog
from fastapi import Depends, Request

from emulator.batch_engine import BatchEngine
from emulator.clock import EmulatedClock
from emulator.config import EmulatorConfig
from emulator.events import Event
from emulator.faults import FaultBook
from emulator.response_engine import ResponseEngine
from emulator.store import Store
from emulator.webhooks import WebhookSender

log = structlog.get_logger()
SETTLE_TICKS = 500


class Emulator:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = EmulatedClock(config.speed)
        self._temp_dir = None if config.data_dir else Path(tempfile.mkdtemp(prefix="emulator-"))
        self.store = Store(config.data_dir or self._temp_dir or Path("."), strict=config.strict)
        self.faults = FaultBook(config.faults)
        self.batches = BatchEngine(self.store, config, self.faults)
        self.responses = ResponseEngine(self.store, config, self.faults)
        self.webhooks = WebhookSender(config)
        # "GET /v1/responses/{response_id}" -> calls served, so tests can count polls.
        self.requests: Counter[str] = Counter()
        self._tick_lock = asyncio.Lock()

    def now(self) -> int:
        return int(self.clock.now())

    async def tick(self) -> bool:
        """One pass over everything that is due; work runs off the event loop."""
        async with self._tick_lock:
            events: list[Event] = []
            progressed = await asyncio.to_thread(self._step, events)
            self.webhooks.dispatch(events)
            return progressed

    def _step(self, events: list[Event]) -> bool:
        now = self.clock.now()
        moved_batches = self.batches.step(now, events)
        moved_responses = self.responses.step(now, events)
        return moved_batches or moved_responses

    async def settle(self) -> None:
        """Tick until nothing more is due (after the clock jumped)."""
        for _ in range(SETTLE_TICKS):
            if not await self.tick():
                return

    async def run_ticker(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_interval)
            try:
                await self.tick()
            except Exception:  # a bug in one tick must not stop the clock for good
                log.exception("emulator tick failed")

    async def reset(self) -> None:
        async with self._tick_lock:
            self.store.clear()
            self.requests.clear()
            self.faults.replace(self.config.faults)
            self.webhooks.reset()

    async def aclose(self) -> None:
        await self.webhooks.aclose()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)


def get_emulator(request: Request) -> Emulator:
    emulator = request.app.state.emulator
    assert isinstance(emulator, Emulator)
    return emulator


EmulatorDep = Annotated[Emulator, Depends(get_emulator)]
