"""Background responses: queued -> in_progress -> completed / failed / incomplete, by the clock.

Faults are decided when a response starts running, so a rule added for a queued response's id
still applies. A stuck response stays in_progress until it is cancelled.
"""

from __future__ import annotations

import structlog

from emulator.config import EmulatorConfig
from emulator.events import Event
from emulator.faults import RESPONSE_KINDS, FaultBook, FaultContext, FaultKind
from emulator.responses_model import ResponseRecord
from emulator.store import Store

log = structlog.get_logger()


class ResponseEngine:
    def __init__(self, store: Store, config: EmulatorConfig, faults: FaultBook) -> None:
        self.store = store
        self.config = config
        self.faults = faults

    def step(self, now: float, events: list[Event]) -> bool:
        progressed = False
        with self.store.lock:
            live = [r for r in self.store.responses.values() if not r.terminal]
            for record in live:
                progressed |= self._advance(record, now, events)
        return progressed

    def _advance(self, record: ResponseRecord, now: float, events: list[Event]) -> bool:
        cfg = self.config
        progressed = False
        start_due = record.created_at + cfg.response_queued_seconds
        if record.status == "queued" and now >= start_due:
            self._start(record, start_due)
            progressed = True
        if record.status == "in_progress" and not record.stuck and record.started_at is not None:
            due = record.started_at + cfg.response_in_progress_seconds
            if now >= due:
                record.finish(due)
                events.append(Event(f"response.{record.status}", record.id, int(due)))
                log.info("response finished", response_id=record.id, status=record.status)
                progressed = True
        return progressed

    def _start(self, record: ResponseRecord, at: float) -> None:
        req = record.request
        ctx = FaultContext("POST", "/v1/responses", req.model, req.metadata, record.id)
        rule = self.faults.first(RESPONSE_KINDS, ctx)
        record.status = "in_progress"
        record.started_at = at
        if rule is not None:
            record.fault_kind = rule.kind.value
            record.fault_message = rule.message
            record.stuck = rule.kind is FaultKind.RESPONSE_STICK

    def cancel(self, record: ResponseRecord, now: int, events: list[Event]) -> None:
        """Called by the route under the store lock; terminal responses are left as they are."""
        if record.terminal:
            return
        record.status = "cancelled"
        events.append(Event("response.cancelled", record.id, now))
