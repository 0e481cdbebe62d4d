"""An httpx response hook that checks every answer against the spec for its route.

SDK 3.54 sends through `httpx2` (its `http_client` is typed `httpx2.Client`; a legacy
`httpx.Client` also works at run time), so the hook only relies on what both responses share.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx2
import openai

from tests.conformance.spec import ConformanceError, response_schema, validate_response


class _URL(Protocol):
    @property
    def path(self) -> str: ...


class _Request(Protocol):
    @property
    def method(self) -> str: ...
    @property
    def url(self) -> _URL: ...
    @property
    def content(self) -> bytes: ...


class _Response(Protocol):
    """What the hook needs; `httpx2.Response` and `httpx.Response` both fit."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def request(self) -> _Request: ...
    def read(self) -> bytes: ...


@dataclass
class SpecRecorder:
    """Plug into an SDK client; afterwards `violations` lists every non-conforming answer."""

    checked: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def __call__(self, response: _Response) -> None:
        request = response.request
        method, path, status = request.method, request.url.path, response.status_code
        route = f"{method} {path} -> {status}"
        self.checked.append(route)
        try:
            self._check(method, path, status, response)
        except ConformanceError as error:
            self.violations.append(str(error))

    def _check(self, method: str, path: str, status: int, response: _Response) -> None:
        route = f"{method} {path} -> {status}"
        if status == 429 and "retry-after" not in response.headers:
            raise ConformanceError(f"{route}: a 429 without a Retry-After header")
        if response_schema(method, path, status) is None:
            return  # raw file content
        media = response.headers.get("content-type", "")
        if not media.startswith("application/json"):
            raise ConformanceError(f"{route}: content-type {media!r}, the spec says JSON")
        try:
            body = json.loads(response.read())
        except ValueError as error:
            raise ConformanceError(f"{route}: the body is not JSON ({error})") from None
        if status < 400 and path.endswith("/embeddings") and _asked_base64(response.request):
            body = _decode_embeddings(body)
        validate_response(method, path, status, body)

    def http_client(self) -> httpx2.Client:
        return httpx2.Client(event_hooks={"response": [self]}, timeout=30.0)

    def client(self, base_url: str, api_key: str = "test-key") -> openai.OpenAI:
        """An SDK client as Laneway builds it (no SDK retries), every answer checked."""
        return openai.OpenAI(
            base_url=base_url, api_key=api_key, max_retries=0, http_client=self.http_client()
        )

    def assert_clean(self) -> None:
        assert self.checked, "no answer was checked"
        assert not self.violations, "\n\n".join(self.violations)


def _asked_base64(request: _Request) -> bool:
    """The SDK asks for base64 embeddings by default; the spec only knows float arrays."""
    try:
        sent = json.loads(request.content)
    except ValueError:
        return False
    return isinstance(sent, dict) and sent.get("encoding_format") == "base64"


def _decode_embeddings(body: object) -> object:
    """Base64 vectors as the float arrays the spec describes; a vector that is not
    little-endian float32 in base64 is a violation."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return body
    data = []
    for item in body["data"]:
        vector = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(vector, str):
            try:
                raw = base64.b64decode(vector, validate=True)
                item = {**item, "embedding": list(struct.unpack(f"<{len(raw) // 4}f", raw))}
            except (binascii.Error, struct.error) as error:
                raise ConformanceError(f"embedding is not base64 float32: {error}") from None
        data.append(item)
    return {**body, "data": data}
