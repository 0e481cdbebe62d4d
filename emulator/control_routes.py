"""Control endpoints under /_emulator (no auth): health, stats, faults, clock, webhooks, reset."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from emulator.faults import FaultRule
from emulator.runtime import EmulatorDep
from emulator.webhooks import WebhookSettings

router = APIRouter(prefix="/_emulator")


class ClockAdvance(BaseModel):
    seconds: float = Field(ge=0)


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/stats")
async def stats(emulator: EmulatorDep) -> dict[str, Any]:
    return {
        **emulator.store.stats(),
        "now": emulator.clock.now(),
        "speed": emulator.clock.speed,
        "faults": emulator.faults.snapshot(),
        "webhooks": emulator.webhooks.stats(),
        "requests": dict(emulator.requests),
    }


@router.get("/faults")
async def list_faults(emulator: EmulatorDep) -> list[dict[str, Any]]:
    return emulator.faults.snapshot()


@router.post("/faults")
async def add_fault(rule: FaultRule, emulator: EmulatorDep) -> dict[str, Any]:
    emulator.faults.add(rule)
    return rule.model_dump(mode="json")


@router.delete("/faults")
async def clear_faults(emulator: EmulatorDep) -> dict[str, bool]:
    emulator.faults.clear()
    return {"cleared": True}


@router.get("/clock")
async def clock(emulator: EmulatorDep) -> dict[str, float]:
    return {"now": emulator.clock.now(), "speed": emulator.clock.speed}


@router.post("/clock/advance")
async def advance_clock(body: ClockAdvance, emulator: EmulatorDep) -> dict[str, float]:
    """Jump ahead and apply every transition now due before answering."""
    emulator.clock.advance(body.seconds)
    await emulator.settle()
    return {"now": emulator.clock.now(), "speed": emulator.clock.speed}


@router.put("/webhooks")
async def set_webhooks(settings: WebhookSettings, emulator: EmulatorDep) -> dict[str, Any]:
    emulator.webhooks.configure(settings)
    return settings.model_dump(mode="json")


@router.post("/reset")
async def reset(emulator: EmulatorDep) -> dict[str, str]:
    await emulator.reset()
    return {"status": "ok"}
