"""Synthetic model outputs: deterministic, derived from the request, cheap to compute.

The "model" labels the sentiment of the last user text by keywords and summarises it by its
first words, so a test can tell which request each result belongs to. Token counts follow the
rough rule of four characters per token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
import struct
from dataclasses import dataclass
from typing import Any

from emulator.errors import APIError, bad_request

POSITIVE = frozenset(
    (
        "good",
        "great",
        "love",
        "loved",
        "excellent",
        "happy",
        "amazing",
        "wonderful",
        "fantastic",
        "best",
        "like",
        "liked",
        "awesome",
        "perfect",
        "pleased",
        "delighted",
        "enjoy",
        "enjoyed",
        "brilliant",
        "superb",
        "recommend",
        "",
    )
)
NEGATIVE = frozenset(
    (
        "bad",
        "terrible",
        "hate",
        "hated",
        "awful",
        "poor",
        "worst",
        "sad",
        "angry",
        "broken",
        "disappointed",
        "disappointing",
        "horrible",
        "useless",
        "refund",
        "slow",
        "rude",
        "never",
        "fail",
        "failed",
        "",
    )
)
SUMMARY_WORDS = 12
DEFAULT_DIMENSIONS = 1536
_WORD = re.compile(r"[A-Za-z']+")


def count_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def sentiment(text: str) -> str:
    words = [w.lower() for w in _WORD.findall(text)]
    score = sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words)
    if score > 0:
        return "positive"
    return "negative" if score < 0 else "neutral"


def summary(text: str) -> str:
    words = text.split()
    head = " ".join(words[:SUMMARY_WORDS])
    return head + ("..." if len(words) > SUMMARY_WORDS else "")


def generate(text: str, json_mode: bool) -> str:
    label, gist = sentiment(text), summary(text)
    if json_mode:
        return json.dumps({"sentiment": label, "summary": gist})
    return f"Sentiment: {label}. Summary: {gist}"


@dataclass(frozen=True)
class Generation:
    text: str
    input_tokens: int
    output_tokens: int
    truncated: bool


def run_model(
    prompt: str, context_chars: int, json_mode: bool, max_tokens: int | None
) -> Generation:
    """Generate for `prompt`; cut the text at `max_tokens` (four characters per token)."""
    text = generate(prompt, json_mode)
    truncated = max_tokens is not None and count_tokens(text) > max_tokens
    if truncated and max_tokens is not None:
        text = text[: max(0, max_tokens * 4)]
    return Generation(text, max(1, math.ceil(context_chars / 4)), count_tokens(text), truncated)


# --- request parsing -------------------------------------------------------------------------


def require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request(
            "you must provide a model parameter", param="model", code="missing_required_parameter"
        )
    return model


def content_text(content: Any) -> str:
    """Text of a message content: a string or a list of text parts (chat or responses style)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return " ".join(p for p in parts if isinstance(p, str))
    return ""


def optional_int(body: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise bad_request(
                f"Invalid '{name}': integer below minimum value. Expected a value >= 1.",
                param=name,
                code="integer_below_min_value",
            )
        return value
    return None


def messages_text(messages: list[Any]) -> tuple[str, int]:
    """(last user text, characters of the whole conversation)."""
    texts = [
        (m.get("role"), content_text(m.get("content"))) for m in messages if isinstance(m, dict)
    ]
    user = [text for role, text in texts if role == "user"]
    prompt = user[-1] if user else (texts[-1][1] if texts else "")
    return prompt, sum(len(text) + 12 for _, text in texts)


# --- embeddings ------------------------------------------------------------------------------


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """A unit vector seeded by the text: same text, same vector."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    rng = random.Random(seed)
    raw = [rng.random() - 0.5 for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [v / norm for v in raw]


def embedding_inputs(body: dict[str, Any]) -> list[str]:
    value = body.get("input")
    if isinstance(value, str):
        items: list[Any] = [value]
    elif isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        items = [" ".join(str(v) for v in value)]  # one pre-tokenised input
    elif isinstance(value, list):
        items = value
    else:
        items = []
    texts = [v if isinstance(v, str) else json.dumps(v) for v in items]
    if not texts or any(not t for t in texts):
        raise bad_request("'$.input' is invalid. Please check the API reference.", param="input")
    return texts


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    model = require_model(body)
    texts = embedding_inputs(body)
    dimensions = optional_int(body, "dimensions") or DEFAULT_DIMENSIONS
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise bad_request(f"Invalid value for 'encoding_format': {fmt!r}.", "encoding_format")
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": _encode(embedding_vector(t, dimensions), fmt),
        }
        for i, t in enumerate(texts)
    ]
    tokens = sum(count_tokens(t) for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def embedding_input_count(body: dict[str, Any]) -> int:
    value = body.get("input")
    if isinstance(value, list) and value and not all(isinstance(v, int) for v in value):
        return len(value)
    return 1


def _encode(vector: list[float], fmt: str) -> list[float] | str:
    if fmt == "float":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def ensure_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise APIError(400, "The request body must be a JSON object.", param="body")
    return body
