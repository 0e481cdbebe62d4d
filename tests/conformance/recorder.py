"""An httpx event hook that checks every JSON answer against the spec for its route."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx2
import openai

from tests.conformance.spec import ConformanceError, validate_response


@dataclass
class SpecRecorder:
    """Plug into an SDK client; afterwards `violations` lists every non-conforming answer."""

    checked: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def __call__(self, response: httpx2.Response) -> None:
        if "application/json" not in response.headers.get("content-type", ""):
            return  # file contents are raw bytes
        response.read()
        request = response.request
        route = f"{request.method} {request.url.path} -> {response.status_code}"
        self.checked.append(route)
        try:
            validate_response(
                request.method, request.url.path, response.status_code, response.json()
            )
        except ConformanceError as error:
            self.violations.append(str(error))

    def client(self, base_url: str, api_key: str = "test-key") -> openai.OpenAI:
        http = httpx2.Client(event_hooks={"response": [self]})
        return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, http_client=http)
