"""The chat on the REAL models (all-MiniLM-L6-v2 and SmolLM2-135M through llama.cpp), over a
real websocket to a live server. Few and short: each model loads once per session."""

from __future__ import annotations

import pytest

from lumara_web import create_app

from .helpers import LiveServer, close, receive, receive_until, send, text_of, wait_idle

WAIT = 60  # a real model on two cores: generous, never reached when all is well


@pytest.fixture(scope="session")
def minilm(real_embedder):
    return real_embedder


@pytest.fixture(scope="session")
def llama(real_engine):
    return real_engine


@pytest.fixture
def server(tmp_path, minilm, llama):
    app = create_app({"data_dir": str(tmp_path), "embedder": minilm, "engine": llama})
    live = LiveServer(app)
    yield live
    live.stop()
    wait_idle(llama)  # the next test starts on an idle engine


def test_a_question_is_answered_from_the_stored_memory_token_by_token(server):
    status, added = server.post("/api/memories", {"content": "My sister Ana lives in Lisbon."})
    assert status == 201
    client = server.connect()
    send(client, type="chat", content="Where does my sister live?")
    events = receive_until(client, "done", timeout=WAIT)
    # Warm-up may run first; the new conversation is announced before the turn.
    events = [event for event in events if event["type"] not in ("queued", "conversation")]
    assert events[0]["type"] == "memories"
    assert added["memory"]["id"] in [item["id"] for item in events[0]["items"]]
    tokens = [event for event in events if event["type"] == "token"]
    assert len(tokens) > 1  # streamed, one frame per token
    done = events[-1]
    assert done["status"] == "complete" and done["stats"]["source"] == "model"
    assert done["stats"]["tokens"] == len(tokens)
    assert "Lisbon" in text_of(events)


def test_stop_mid_answer_on_the_real_model(server, llama):
    client = server.connect()
    # A general question (no memory needed) with a long answer: it goes to the model.
    send(client, type="chat",
         content="What is the history of the Roman empire? Explain it at length.")
    tokens = 0
    while tokens < 3:
        event = receive(client, timeout=WAIT)
        tokens += event["type"] == "token"
    send(client, type="stop")
    done = receive_until(client, "done", timeout=WAIT)[-1]
    assert done["status"] == "stopped"
    max_tokens = server.app.extensions["lumara"].settings["answer_max_tokens"]
    assert 3 <= done["stats"]["tokens"] < max_tokens
    wait_idle(llama)  # the generation itself ended, not just the stream
    close(client)


def test_a_statement_is_acknowledged_and_remembered(server):
    client = server.connect()
    statement = "My dog is called Rex and he is a beagle."
    send(client, type="chat", content=statement)
    events = receive_until(client, "done", timeout=WAIT)
    assert text_of(events) == "Noted: your dog is called Rex and he is a beagle."
    assert events[-1]["stats"]["source"] == "template"
    outcome = receive(client, timeout=WAIT)  # the extraction runs on the model after "done"
    assert outcome["type"] in ("memory_saved", "memory_suggested"), outcome
    remembered = outcome.get("memory") or outcome.get("suggestion")
    assert "Rex" in remembered["content"]
    if outcome["type"] == "memory_saved":
        status, stored = server.get(f"/api/memories/{remembered['id']}")
        assert status == 200 and stored["memory"]["source"] == "chat"
