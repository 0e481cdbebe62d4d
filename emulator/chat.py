"""Chat completions: the synchronous body, shared by the route and batch execution."""

from __future__ import annotations

from typing import Any

from emulator import ids
from emulator.errors import bad_request
from emulator.synth import messages_text, optional_int, require_model, run_model


def _json_mode(body: dict[str, Any]) -> bool:
    fmt = body.get("response_format")
    return isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")


def chat_completion(body: dict[str, Any], now: int) -> dict[str, Any]:
    model = require_model(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request(
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    prompt, chars = messages_text(messages)
    max_tokens = optional_int(body, "max_completion_tokens", "max_tokens")
    gen = run_model(prompt, chars, _json_mode(body), max_tokens)
    tier = body.get("service_tier")
    return {
        "id": ids.chat_completion_id(),
        "object": "chat.completion",
        "created": now,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": gen.text,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "length" if gen.truncated else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": gen.input_tokens,
            "completion_tokens": gen.output_tokens,
            "total_tokens": gen.input_tokens + gen.output_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": tier if tier in ("flex", "priority", "scale") else "default",
        "system_fingerprint": "fp_laneway_emulator",
    }
