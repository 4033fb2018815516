"""/v1, the OpenAI-compatible API, through OpenAI's own Python client against a live server
(FakeEngine and FakeEmbedder behind; one test on the real models)."""

from __future__ import annotations

import http.client
import json
import socket

import openai
import pytest

from lumara_web import create_app
from lumara_web.memory.validation import NewMemory
from lumara_web.storage import db

from .fakes import DIMENSIONS, FakeEmbedder, FakeEngine
from .helpers import LiveServer, wait_idle

WAIT = 10
REAL_WAIT = 120  # a real model on two cores: generous, never reached when all is well


@pytest.fixture
def serve(serve):
    """conftest's serve, with the start-up warm-up's requests forgotten: requests seen are
    ours."""
    def start(engine=None, embedder=None) -> LiveServer:
        server = serve(engine, embedder)
        server.app.extensions["lumara"].engine.requests.clear()
        return server
    return start


def client_for(server: LiveServer, timeout: float = WAIT) -> openai.OpenAI:
    # No retries: a 429 or 503 must reach the test as it was sent.
    return openai.OpenAI(base_url=f"{server.base}/v1", api_key="unused", max_retries=0,
                         timeout=timeout)


def add_memory(server: LiveServer, content: str) -> int:
    services = server.app.extensions["lumara"]
    conn = db.connect(services.settings["db_path"])
    try:
        memory, _ = services.memories.add(conn, NewMemory(content, "knowledge", [], {}))
    finally:
        conn.close()
    return memory.id


def test_models_lists_the_chat_and_embedding_models(serve):
    models = client_for(serve()).models.list()
    assert [model.id for model in models.data] == ["lumara", FakeEmbedder.model_id]


def test_a_completion_is_grounded_on_memories_and_reports_them(serve):
    engine = FakeEngine()
    server = serve(engine)
    memory_id = add_memory(server, "My sister Ana lives in Lisbon.")
    engine.enqueue("Your sister Ana lives in Lisbon.")
    completion = client_for(server).chat.completions.create(
        model="lumara", messages=[{"role": "system", "content": "Be a pirate."},
                                  {"role": "user", "content": "Where does my sister Ana live?"}])
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "Your sister Ana lives in Lisbon."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == 6
    memories = completion.model_extra["lumara"]["memories"]
    assert [item["id"] for item in memories] == [memory_id]
    assert memories[0]["content"] == "My sister Ana lives in Lisbon." and memories[0]["similarity"]
    prompt = engine.requests[-1].messages
    assert "My sister Ana lives in Lisbon." in prompt[-1]["content"]
    assert all("pirate" not in message["content"] for message in prompt)  # system: dropped
    assert engine.requests[-1].temperature == 0.0


def test_history_is_replayed_and_max_tokens_is_capped(serve):
    engine = FakeEngine()
    server = serve(engine)
    client_for(server).chat.completions.create(
        model="lumara", max_tokens=10_000, temperature=0.5,
        messages=[{"role": "user", "content": "Who is Tom?"},
                  {"role": "assistant", "content": "Your brother."},
                  {"role": "user", "content": "What does he do?"}])
    request = engine.requests[-1]
    assert request.max_tokens == server.app.extensions["lumara"].settings["answer_max_tokens"]
    assert request.temperature == 0.5
    assert {"role": "assistant", "content": "Your brother."} in request.messages
    assert "What does he do?" in request.messages[-1]["content"]


def test_streaming_chunks_assemble_to_the_reply(serve):
    engine = FakeEngine()
    server = serve(engine)
    memory_id = add_memory(server, "My sister Ana lives in Lisbon.")
    engine.enqueue("Your sister Ana lives in Lisbon.")
    chunks = list(client_for(server).chat.completions.create(
        model="lumara", stream=True,
        messages=[{"role": "user", "content": "Where does my sister Ana live?"}]))
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [item["id"] for item in chunks[0].model_extra["lumara"]["memories"]] == [memory_id]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text == "Your sister Ana lives in Lisbon."
    assert len(chunks) == 1 + 6 + 1  # role, one chunk per token, finish
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_the_stream_is_server_sent_events_ending_with_done(serve):
    server = serve()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
    connection.request("POST", "/v1/chat/completions", json.dumps(
        {"model": "lumara", "stream": True, "messages": [{"role": "user", "content": "Hi?"}]}),
        {"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/event-stream")
    events = response.read().decode().split("\n\n")
    connection.close()
    assert events[-2:] == ["data: [DONE]", ""]
    assert all(event.startswith("data: ") for event in events[:-1])


def test_grounding_off_is_plain_chat_without_retrieval(serve):
    engine = FakeEngine()
    embedder = FakeEmbedder()
    server = serve(engine, embedder)
    add_memory(server, "My sister Ana lives in Lisbon.")
    engine.enqueue("Hello there.")
    completion = client_for(server).chat.completions.create(
        model="lumara", extra_body={"lumara": {"memories": False}},
        messages=[{"role": "user", "content": "Where does my sister Ana live?"}])
    assert completion.choices[0].message.content == "Hello there."
    assert completion.model_extra["lumara"] == {"memories": []}
    messages = engine.requests[-1].messages
    assert messages == [messages[0], {"role": "user",
                                      "content": "Where does my sister Ana live?"}]
    assert messages[0]["role"] == "system"
    assert "Where does my sister Ana live?" not in embedder.texts_embedded  # no retrieval


class CountingEngine(FakeEngine):
    """A FakeEngine that counts the tokens it has generated."""

    def __init__(self, **options):
        super().__init__(**options)
        self.generated = 0

    def _generate(self, model, job):
        for piece in super()._generate(model, job):
            self.generated += 1
            yield piece


def test_a_client_disconnect_stops_the_job(serve):
    engine = CountingEngine(token_delay=0.05)
    server = serve(engine)
    words = 400  # 20 s if nobody stopped it
    engine.enqueue(" ".join(["word"] * words))
    body = json.dumps({"model": "lumara", "stream": True,
                       "messages": [{"role": "user", "content": "Hi?"}]}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        received = b""
        while b'"content": "word' not in received:  # a token came: the job is generating
            received += sock.recv(65536)
        assert engine.status()["queue"]["running"]
    wait_idle(engine)
    assert engine.generated < words  # stopped by the disconnect, not by the reply's end


def test_embeddings_single_and_list(serve):
    client = client_for(serve())
    single = client.embeddings.create(model="any", input="My dog is called Rex.")
    assert single.object == "list" and len(single.data) == 1
    assert len(single.data[0].embedding) == DIMENSIONS
    assert single.model == FakeEmbedder.model_id and single.usage.total_tokens == 5
    many = client.embeddings.create(model="any", input=["one", "two", "one"],
                                    encoding_format="float")
    assert [item.index for item in many.data] == [0, 1, 2]
    assert many.data[0].embedding == many.data[2].embedding != many.data[1].embedding
    assert sum(value * value for value in many.data[1].embedding) == pytest.approx(1, abs=1e-4)


@pytest.mark.parametrize("call, param", [
    (lambda c: c.chat.completions.create(model="lumara", messages=[]), "messages"),
    (lambda c: c.chat.completions.create(model="lumara", messages="hi"), "messages"),
    (lambda c: c.chat.completions.create(
        model="lumara", messages=[{"role": "robot", "content": "hi"}]), "messages[0].role"),
    (lambda c: c.chat.completions.create(
        model="lumara", messages=[{"role": "user", "content": 7}]), "messages[0].content"),
    (lambda c: c.chat.completions.create(
        model="lumara", messages=[{"role": "user", "content": "   "}]), "messages[0].content"),
    (lambda c: c.chat.completions.create(
        model="lumara", messages=[{"role": "assistant", "content": "hi"}]), "messages"),
    (lambda c: c.chat.completions.create(
        model="lumara", messages=[{"role": "user", "content": "hi"}], max_tokens=0),
     "max_tokens"),
    (lambda c: c.chat.completions.create(
        model="lumara", messages=[{"role": "user", "content": "hi"}], temperature=9),
     "temperature"),
    (lambda c: c.embeddings.create(model="any", input=""), "input"),
    (lambda c: c.embeddings.create(model="any", input=[]), "input"),
    (lambda c: c.embeddings.create(model="any", input=[[1, 2, 3]]), "input"),
])
def test_bad_requests_raise_bad_request_error_with_a_message(serve, call, param):
    with pytest.raises(openai.BadRequestError) as raised:
        call(client_for(serve()))
    error = raised.value.body
    assert raised.value.status_code == 400 and error["message"]
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_missing_messages_and_non_json_are_explained(serve):
    server = serve()
    client = client_for(server)
    with pytest.raises(openai.BadRequestError, match="messages must be"):
        client.post("/chat/completions", body={"model": "lumara"}, cast_to=object)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
    connection.request("POST", "/v1/embeddings", "input=x",
                       {"Content-Type": "application/x-www-form-urlencoded"})
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    assert response.status == 415 and "application/json" in body["error"]["message"]


def test_a_full_queue_raises_rate_limit_error(serve):
    server = serve(FakeEngine(max_queue=0))  # every request finds the queue full
    with pytest.raises(openai.RateLimitError) as raised:
        client_for(server).chat.completions.create(
            model="lumara", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.body["code"] == "busy"


def test_real_models_answer_from_a_stored_memory(tmp_path, real_engine, real_embedder):
    app = create_app({"data_dir": str(tmp_path), "embedder": real_embedder,
                      "engine": real_engine})
    server = LiveServer(app)
    try:
        memory_id = add_memory(server, "My sister Ana lives in Lisbon.")
        completion = client_for(server, timeout=REAL_WAIT).chat.completions.create(
            model="lumara", messages=[{"role": "user", "content": "Where does my sister live?"}])
    finally:
        server.stop()
        wait_idle(real_engine)
    assert memory_id in [item["id"] for item in completion.model_extra["lumara"]["memories"]]
    assert "Lisbon" in completion.choices[0].message.content
    assert completion.model.endswith(".gguf")
