"""Chat completions, embeddings, models, and the error bodies every route shares."""

from __future__ import annotations

import openai
import pytest
from openai.types import CreateEmbeddingResponse, Model
from openai.types.chat import ChatCompletion

from emulator.server import EmulatorServer
from tests.conformance.conftest import CLOCK_KEY
from tests.conformance.helpers import ENDPOINTS, MODEL
from tests.conformance.recorder import SpecRecorder
from tests.conformance.sdk_models import assert_known

EMBEDDING_MODEL = "text-embedding-3-small"


def test_chat_completion(fast_emulator: EmulatorServer, recorder: SpecRecorder) -> None:
    client = recorder.client(fast_emulator.base_url)
    chat = client.chat.completions.create(**ENDPOINTS["/v1/chat/completions"][2])
    assert isinstance(chat, ChatCompletion) and chat.object == "chat.completion"
    assert chat.choices[0].message.content and chat.choices[0].finish_reason == "stop"
    assert chat.usage is not None and chat.usage.total_tokens > 0
    assert_known(chat)
    with pytest.raises(openai.BadRequestError) as missing:
        client.chat.completions.create(model=MODEL, messages=[])
    assert missing.value.param == "messages"
    recorder.assert_clean()


def test_embeddings_as_floats_and_base64(
    fast_emulator: EmulatorServer, recorder: SpecRecorder
) -> None:
    # The SDK asks for base64 unless told otherwise; the recorder decodes those vectors
    # before checking, since the spec only describes float arrays.
    client = recorder.client(fast_emulator.base_url)
    floats = client.embeddings.create(
        model=EMBEDDING_MODEL, input=["a", "b"], encoding_format="float", dimensions=16
    )
    assert isinstance(floats, CreateEmbeddingResponse) and len(floats.data) == 2
    assert len(floats.data[0].embedding) == 16 and floats.usage.prompt_tokens > 0
    decoded = client.embeddings.create(model=EMBEDDING_MODEL, input=["a", "b"], dimensions=16)
    assert decoded.data[1].embedding == pytest.approx(floats.data[1].embedding, rel=1e-6)
    assert_known(floats)
    recorder.assert_clean()


def test_models(fast_emulator: EmulatorServer, recorder: SpecRecorder) -> None:
    client = recorder.client(fast_emulator.base_url)
    models = list(client.models.list())
    assert models and all(isinstance(model, Model) for model in models)
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("gpt-none")
    assert missing.value.code == "model_not_found"
    recorder.assert_clean()


def test_auth_errors(clock_emulator: EmulatorServer, recorder: SpecRecorder) -> None:
    wrong = recorder.client(clock_emulator.base_url, api_key="sk-wrong")
    with pytest.raises(openai.AuthenticationError) as refused:
        wrong.batches.list()
    assert refused.value.type == "invalid_request_error"
    assert "sk-wrong" not in str(refused.value)  # the key is never echoed back
    with recorder.http_client() as anonymous:
        assert anonymous.get(f"{clock_emulator.base_url}/files").status_code == 401
    assert [route.rsplit(" ", 1)[-1] for route in recorder.checked] == ["401", "401"]
    recorder.assert_clean()


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("http_429", openai.RateLimitError),
        ("http_500", openai.InternalServerError),
        ("http_503", openai.InternalServerError),
    ],
)
def test_provider_failures(
    clock_emulator: EmulatorServer,
    recorder: SpecRecorder,
    kind: str,
    error: type[openai.APIStatusError],
) -> None:
    client = recorder.client(clock_emulator.base_url, CLOCK_KEY)
    clock_emulator.control.add_fault(
        {"kind": kind, "match": {"path_prefix": "/v1/responses"}, "times": 1, "retry_after": 3}
    )
    with pytest.raises(error) as failed:
        client.responses.create(model=MODEL, input="hello", background=True)
    if kind == "http_429":
        assert failed.value.response.headers["retry-after"] == "3"
    assert client.responses.create(model=MODEL, input="hello", background=True).id
    recorder.assert_clean()
