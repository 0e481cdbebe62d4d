"""Bearer-key check for /v1, answering 401 the way OpenAI does."""

from __future__ import annotations

from fastapi import Request

from emulator.errors import APIError
from emulator.runtime import EmulatorDep


def _unauthorized(message: str) -> APIError:
    return APIError(401, message, code="invalid_api_key", type_="invalid_request_error")


async def require_api_key(request: Request, emulator: EmulatorDep) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise _unauthorized(
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
    expected = emulator.config.api_key
    if expected is not None and key != expected:
        shown = key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 7 else "***"
        raise _unauthorized(f"Incorrect API key provided: {shown}.")
