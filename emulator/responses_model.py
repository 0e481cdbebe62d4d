"""Response objects: the record kept per response and its OpenAI-shaped rendering."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulator import ids
from emulator.errors import bad_request
from emulator.synth import Generation, content_text, optional_int, require_model, run_model

TERMINAL = frozenset({"completed", "failed", "incomplete", "cancelled"})
_SERVICE_TIERS = frozenset({"flex", "priority", "scale", "default"})


@dataclass(frozen=True)
class ResponseRequest:
    """What a create call asked for, parsed once."""

    model: str
    prompt: str
    context_chars: int
    json_mode: bool
    max_output_tokens: int | None
    background: bool
    metadata: dict[str, str]
    body: dict[str, Any]


def parse_request(body: dict[str, Any]) -> ResponseRequest:
    model = require_model(body)
    if body.get("stream"):
        raise bad_request("Streaming is not supported by the Laneway emulator.", param="stream")
    prompt, chars = _input_text(body.get("input"))
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        chars += len(instructions)
    text_cfg = body.get("text")
    fmt = text_cfg.get("format") if isinstance(text_cfg, dict) else None
    json_mode = isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict) or len(metadata) > 16:
        raise bad_request("Invalid 'metadata': at most 16 string pairs.", param="metadata")
    return ResponseRequest(
        model=model,
        prompt=prompt,
        context_chars=chars,
        json_mode=json_mode,
        max_output_tokens=optional_int(body, "max_output_tokens"),
        background=bool(body.get("background")),
        metadata={str(k): str(v) for k, v in metadata.items()},
        body=body,
    )


def _input_text(value: Any) -> tuple[str, int]:
    if isinstance(value, str) and value:
        return value, len(value)
    if not isinstance(value, list) or not value:
        raise bad_request(
            "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
        )
    items = [
        (item.get("role", "user"), content_text(item.get("content")))
        for item in value
        if isinstance(item, dict)
    ]
    user = [text for role, text in items if role == "user"]
    prompt = user[-1] if user else (items[-1][1] if items else "")
    return prompt, sum(len(text) + 12 for _, text in items)


@dataclass
class ResponseRecord:
    request: ResponseRequest
    created_at: int
    id: str = field(default_factory=ids.response_id)
    message_id: str = field(default_factory=ids.message_id)
    status: str = "queued"
    started_at: float | None = None
    completed_at: int | None = None
    generation: Generation | None = None
    error: dict[str, str] | None = None
    incomplete_reason: str | None = None
    stuck: bool = False
    fault_kind: str | None = None
    fault_message: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def finish(self, at: float) -> None:
        """Move to the terminal state the request (or an injected fault) calls for."""
        req, fault_kind, message = self.request, self.fault_kind, self.fault_message
        gen = run_model(req.prompt, req.context_chars, req.json_mode, req.max_output_tokens)
        if fault_kind == "response_fail":
            self.status = "failed"
            self.generation = Generation("", gen.input_tokens, 0, False)
            self.error = {
                "code": "server_error",
                "message": message or "The model failed to generate a response.",
            }
            return
        if fault_kind == "response_incomplete" and not gen.truncated:
            cut = max(1, gen.output_tokens // 2)
            gen = run_model(req.prompt, req.context_chars, req.json_mode, cut)
        self.generation = gen
        if gen.truncated:
            self.status = "incomplete"
            self.incomplete_reason = "max_output_tokens"
        else:
            self.status = "completed"
            self.completed_at = int(at)

    def render(self) -> dict[str, Any]:
        body = self.request.body
        tier = body.get("service_tier")
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": self.status,
            "background": self.request.background,
            "billing": {"payer": "developer"},
            "completed_at": self.completed_at,
            "error": self.error,
            "incomplete_details": (
                {"reason": self.incomplete_reason} if self.incomplete_reason else None
            ),
            "instructions": body.get("instructions"),
            "max_output_tokens": self.request.max_output_tokens,
            "max_tool_calls": body.get("max_tool_calls"),
            "model": self.request.model,
            "output": self._output(),
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "prompt_cache_key": body.get("prompt_cache_key"),
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "safety_identifier": body.get("safety_identifier"),
            "service_tier": tier if tier in _SERVICE_TIERS else "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_logprobs": body.get("top_logprobs", 0),
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": self._usage(),
            "user": body.get("user"),
            "metadata": self.request.metadata,
        }

    def _output(self) -> list[dict[str, Any]]:
        if self.status not in ("completed", "incomplete") or self.generation is None:
            return []
        content = {
            "type": "output_text",
            "text": self.generation.text,
            "annotations": [],
            "logprobs": [],
        }
        return [
            {
                "id": self.message_id,
                "type": "message",
                "status": self.status,
                "role": "assistant",
                "content": [content],
            }
        ]

    def _usage(self) -> dict[str, Any] | None:
        gen = self.generation
        if gen is None or self.status == "cancelled":
            return None
        return {
            "input_tokens": gen.input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": gen.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": gen.input_tokens + gen.output_tokens,
        }
