"""HTTP faults for /v1 requests, applied before routing (and before the key check).

A pure ASGI middleware because a dropped connection needs control below the response
abstraction: it sends headers that promise a body, a fragment of it, and then returns, so
uvicorn closes the socket mid-body and the client sees a broken connection.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulator.errors import rate_limited, server_error
from emulator.faults import HTTP_KINDS, FaultBook, FaultContext, FaultKind, FaultRule

MAX_INSPECTED_BODY = 10 * 1024 * 1024
_LATENCY = frozenset({FaultKind.LATENCY})
_TERMINAL = HTTP_KINDS - _LATENCY


class FaultMiddleware:
    def __init__(self, app: ASGIApp, faults: FaultBook) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not str(scope["path"]).startswith("/v1/")
            or not self.faults.has_any(HTTP_KINDS)
        ):
            await self.app(scope, receive, send)
            return
        fields, receive = await _inspect_body(scope, receive)
        ctx = FaultContext(
            method=str(scope["method"]),
            path=str(scope["path"]),
            model=fields.get("model") if isinstance(fields.get("model"), str) else None,
            metadata=_string_map(fields.get("metadata")),
        )
        for slow in self.faults.fire(_LATENCY, ctx):
            await asyncio.sleep(slow.latency_seconds)
        rule = self.faults.first(_TERMINAL, ctx)
        if rule is None:
            await self.app(scope, receive, send)
        elif rule.kind is FaultKind.DROP_CONNECTION:
            await _drop(send)
        else:
            await _error_response(rule)(scope, receive, send)


def _error_response(rule: FaultRule) -> Any:
    if rule.kind is FaultKind.HTTP_429:
        return rate_limited(rule.retry_after, rule.message).response()
    status = 503 if rule.kind is FaultKind.HTTP_503 else 500
    return server_error(status, rule.message).response()


async def _drop(send: Send) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"4096")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"id": "', "more_body": True})


async def _inspect_body(scope: Scope, receive: Receive) -> tuple[dict[str, Any], Receive]:
    """Read a JSON body to match on model/metadata, and hand the app a receive that replays it."""
    headers = dict(scope.get("headers") or [])
    content_type = headers.get(b"content-type", b"").decode("latin-1")
    length = int(headers.get(b"content-length", b"0") or 0)
    if "json" not in content_type or length > MAX_INSPECTED_BODY:
        return {}, receive
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        chunks.append(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body"):
            break

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    try:
        parsed = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        parsed = {}
    return (parsed if isinstance(parsed, dict) else {}), replay


def _string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}
