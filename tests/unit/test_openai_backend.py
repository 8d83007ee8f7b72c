"""The OpenAI-compatible backend's protocol handling, against a scripted HTTP transport."""

import json

import httpx
import pytest

from bot.engines.llm import OpenAICompatibleModel
from bot.errors import ModelError

SCHEMA = {"type": "object", "properties": {"reponse": {"type": "string"}}}


def streamed(*pieces: str, usage: dict | None = None) -> str:
    events = [{"choices": [{"delta": {"content": p}}]} for p in pieces]
    if usage:
        events.append({"choices": [], "usage": usage})
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


def model_answering(handler, json_format="json_schema") -> OpenAICompatibleModel:
    client = httpx.Client(base_url="http://model.local/v1", transport=httpx.MockTransport(handler))
    return OpenAICompatibleModel("http://model.local/v1", "qwen", json_format=json_format, client=client)


def test_a_streamed_reply_is_assembled_with_its_usage():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(json.loads(request.content))
        body = streamed('{"reponse": ', '"Oui."}', usage={"prompt_tokens": 321, "completion_tokens": 7})
        return httpx.Response(200, text=body, headers={"Content-Type": "text/event-stream"})

    texts = []
    completion = model_answering(handler).complete([{"role": "user", "content": "?"}], SCHEMA, 50, texts.append)
    assert completion.text == '{"reponse": "Oui."}' and texts == ['{"reponse": ', '{"reponse": "Oui."}']
    assert (completion.prompt_tokens, completion.completion_tokens) == (321, 7)
    assert seen["stream"] is True and seen["max_tokens"] == 50 and seen["model"] == "qwen"
    assert seen["response_format"] == {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}}


def test_llama_cpp_python_servers_take_the_schema_in_json_object():
    seen = {}

    def handler(request):
        seen.update(json.loads(request.content))
        return httpx.Response(200, text=streamed("{}"))

    completion = model_answering(handler, "json_object").complete([{"role": "user", "content": "?"}], SCHEMA)
    assert seen["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert completion.completion_tokens == 1  # no usage reported: counted from the stream


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (lambda request: httpx.Response(503, text="overloaded"), "answered 503"),
        (lambda request: (_ for _ in ()).throw(httpx.ConnectError("refused")), "unreachable"),
    ],
)
def test_server_failures_become_model_errors(handler, message):
    with pytest.raises(ModelError, match=message):
        model_answering(handler).complete([{"role": "user", "content": "?"}])


def test_a_keep_alive_connection_the_server_closed_is_retried_once_on_a_new_one():
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return httpx.Response(200, text=streamed("Oui."))

    assert model_answering(handler).complete([{"role": "user", "content": "?"}]).text == "Oui."
    assert len(calls) == 2
    calls.clear()

    def always(request):
        calls.append(request)
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    with pytest.raises(ModelError, match="unreachable"):
        model_answering(always).complete([{"role": "user", "content": "?"}])
    assert len(calls) == 2  # once more, not forever
