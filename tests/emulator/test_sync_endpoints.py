"""Chat completions, embeddings and models."""

from __future__ import annotations

import math

import openai
import pytest
from openai import OpenAI

from emulator.server import EmulatorServer


def test_chat_completion_shape_and_content(frozen: EmulatorServer, client: OpenAI) -> None:
    answer = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Classify."},
            {"role": "user", "content": "The delivery was awful and the box was broken"},
        ],
    )
    assert answer.object == "chat.completion" and answer.id.startswith("chatcmpl-")
    assert answer.model == "gpt-4o-mini" and answer.choices[0].finish_reason == "stop"
    text = answer.choices[0].message.content
    assert text == "Sentiment: negative. Summary: The delivery was awful and the box was broken"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == math.ceil(len(text) / 4)
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    assert frozen.control.stats()["ids"]["chat_completions"] == [answer.id]


def test_chat_max_tokens_cuts_with_length(client: OpenAI) -> None:
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}], max_tokens=2
    )
    assert answer.choices[0].finish_reason == "length"
    assert answer.choices[0].message.content == "Sentimen"


def test_embeddings_are_deterministic_unit_vectors(client: OpenAI) -> None:
    first = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])
    again = client.embeddings.create(model="text-embedding-3-small", input="alpha")
    floats = client.embeddings.create(
        model="text-embedding-3-small", input="alpha", encoding_format="float"
    )
    assert first.object == "list" and [d.index for d in first.data] == [0, 1]
    assert len(first.data[0].embedding) == 1536
    assert first.data[0].embedding == pytest.approx(again.data[0].embedding)
    assert first.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    assert first.data[0].embedding != pytest.approx(first.data[1].embedding)
    assert sum(v * v for v in floats.data[0].embedding) == pytest.approx(1.0)
    assert first.usage.prompt_tokens == first.usage.total_tokens > 0


def test_embeddings_honour_dimensions(client: OpenAI) -> None:
    answer = client.embeddings.create(model="text-embedding-3-large", input="x", dimensions=64)
    assert len(answer.data[0].embedding) == 64


def test_models(client: OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert "gpt-4o-mini" in ids and "text-embedding-3-small" in ids
    assert client.models.retrieve("gpt-4o-mini").object == "model"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_unknown_route_answers_openai_style(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.get("/nothing/here", cast_to=object)
    assert "Invalid URL" in err.value.message
