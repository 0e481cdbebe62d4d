"""Typed clients for the control endpoints (/_emulator/...), sync and async."""

from __future__ import annotations

from typing import Any

import httpx

from emulator.config import WebhookMode
from emulator.faults import FaultRule


def _fault_json(rule: FaultRule | dict[str, Any]) -> dict[str, Any]:
    if isinstance(rule, FaultRule):
        return rule.model_dump(mode="json")
    return FaultRule.model_validate(rule).model_dump(mode="json")


def _webhook_json(
    url: str | None, secret: str | None, mode: WebhookMode | str, delay_seconds: float
) -> dict[str, Any]:
    return {"url": url, "secret": secret, "mode": str(mode), "delay_seconds": delay_seconds}


class EmulatorControl:
    def __init__(self, root_url: str, timeout: float = 30.0) -> None:
        self._http = httpx.Client(base_url=root_url.rstrip("/") + "/_emulator", timeout=timeout)

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        answer = self._http.request(method, path, json=json)
        answer.raise_for_status()
        return answer.json()

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/health")
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/stats")
        return result

    def add_fault(self, rule: FaultRule | dict[str, Any]) -> FaultRule:
        return FaultRule.model_validate(self._call("POST", "/faults", _fault_json(rule)))

    def faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/faults")
        return result

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def now(self) -> float:
        return float(self._call("GET", "/clock")["now"])

    def advance_clock(self, seconds: float) -> float:
        """Jump emulated time forward; returns once every transition now due has happened."""
        return float(self._call("POST", "/clock/advance", {"seconds": seconds})["now"])

    def set_webhooks(
        self,
        url: str | None,
        secret: str | None,
        mode: WebhookMode | str = WebhookMode.NORMAL,
        delay_seconds: float = 1.0,
    ) -> None:
        self._call("PUT", "/webhooks", _webhook_json(url, secret, mode, delay_seconds))

    def reset(self) -> None:
        self._call("POST", "/reset")

    def close(self) -> None:
        self._http.close()


class AsyncEmulatorControl:
    def __init__(self, root_url: str, timeout: float = 30.0) -> None:
        base = root_url.rstrip("/") + "/_emulator"
        self._http = httpx.AsyncClient(base_url=base, timeout=timeout)

    async def _call(self, method: str, path: str, json: Any = None) -> Any:
        answer = await self._http.request(method, path, json=json)
        answer.raise_for_status()
        return answer.json()

    async def health(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/health")
        return result

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/stats")
        return result

    async def add_fault(self, rule: FaultRule | dict[str, Any]) -> FaultRule:
        return FaultRule.model_validate(await self._call("POST", "/faults", _fault_json(rule)))

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/faults")

    async def advance_clock(self, seconds: float) -> float:
        answer = await self._call("POST", "/clock/advance", {"seconds": seconds})
        return float(answer["now"])

    async def set_webhooks(
        self,
        url: str | None,
        secret: str | None,
        mode: WebhookMode | str = WebhookMode.NORMAL,
        delay_seconds: float = 1.0,
    ) -> None:
        await self._call("PUT", "/webhooks", _webhook_json(url, secret, mode, delay_seconds))

    async def reset(self) -> None:
        await self._call("POST", "/reset")

    async def aclose(self) -> None:
        await self._http.aclose()
