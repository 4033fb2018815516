"""/ws/chat over a real websocket: a live werkzeug server in a thread, simple_websocket
clients, the FakeEngine behind."""

from __future__ import annotations

import json
import urllib.request

import pytest
from simple_websocket import ConnectionClosed

from lumara_web.memory.validation import NewMemory
from lumara_web.storage import db
from lumara_web.web.chat_socket import MAX_FRAME_BYTES

from .fakes import FakeEngine
from .helpers import (
    WAIT,
    GatedEngine,
    close,
    receive,
    receive_until,
    send,
    text_of,
    wait_idle,
)


def test_tokens_arrive_as_separate_frames_after_the_memories(serve):
    engine = FakeEngine()
    server = serve(engine)
    services = server.app.extensions["lumara"]
    conn = db.connect(services.settings["db_path"])
    try:
        memory, _ = services.memories.add(conn, NewMemory("My sister Ana lives in Lisbon.",
                                                          "knowledge", [], {}))
    finally:
        conn.close()
    engine.enqueue("Your sister Ana lives in Lisbon.")
    client = server.connect()
    send(client, type="chat", content="Where does my sister Ana live?")
    events = receive_until(client, "done")
    assert [event["type"] for event in events] == \
        ["conversation", "memories"] + ["token"] * 6 + ["done"]
    assert events[0]["conversation_id"] == events[-1]["conversation_id"]  # known at once
    assert [item["id"] for item in events[1]["items"]] == [memory.id]
    assert [event["text"] for event in events[2:-1]] == [
        "Your ", "sister ", "Ana ", "lives ", "in ", "Lisbon."]
    assert events[-1]["status"] == "complete"
    assert events[-1]["message_id"] and events[-1]["conversation_id"]


def test_a_statement_gets_its_memory_event_over_the_socket(serve):
    engine = FakeEngine()
    server = serve(engine)
    engine.enqueue({"content": "My dog is called Rex.", "tags": ["pets"]}, "extract")
    client = server.connect()
    send(client, type="chat", content="My dog is called Rex.")
    events = receive_until(client, "memory_saved")
    assert text_of(events) == "Noted: your dog is called Rex."
    assert [event["type"] for event in events][-2:] == ["done", "memory_saved"]
    status, listed = server.get("/api/memories")
    assert status == 200 and [m["content"] for m in listed["items"]] == ["My dog is called Rex."]


def test_stop_works_over_the_socket(serve):
    engine = GatedEngine()
    server = serve(engine)
    engine.enqueue(" ".join(f"word{i}" for i in range(100)))
    client = server.connect()
    send(client, type="chat", content="Can you count to one hundred?")
    engine.allow(3)
    events = receive_until(client, "token")
    send(client, type="stop")  # the fourth token waits in the engine: only stop ends it
    events += receive_until(client, "done")
    done = events[-1]
    assert done["status"] == "stopped"
    assert 1 <= done["stats"]["tokens"] <= 3
    wait_idle(engine)
    engine.open()
    send(client, type="chat", content="Hello!")  # the connection goes on
    assert receive_until(client, "done")[-1]["status"] == "complete"


def test_an_answer_goes_on_when_its_page_leaves_and_another_page_attaches(serve):
    engine = GatedEngine()
    server = serve(engine)
    engine.enqueue(" ".join(f"word{i}" for i in range(100)))
    client = server.connect()
    send(client, type="chat", content="Can you count to one hundred?")
    engine.allow(1)
    events = receive_until(client, "token")
    assert events[-1]["text"] == "word0 "
    conversation_id = events[0]["conversation_id"]
    close(client)  # a reload: no stop frame

    page = server.connect()
    send(page, type="attach", conversation_id=conversation_id)
    assert receive(page) == {"type": "attached", "conversation_id": conversation_id}
    replayed = receive_until(page, "token")  # from the turn's first event
    assert [event["type"] for event in replayed] == ["conversation", "memories", "token"]
    engine.open()
    rest = receive_until(page, "turn_end")
    assert rest[-2]["type"] == "done" and rest[-2]["status"] == "complete"
    assert text_of(replayed + rest) == " ".join(f"word{i}" for i in range(100))
    conn = db.connect(server.app.extensions["lumara"].settings["db_path"])
    try:
        [(content, status)] = conn.execute(
            "SELECT content, status FROM messages WHERE role = 'assistant'").fetchall()
        assert status == "complete" and content.endswith("word99")
    finally:
        conn.close()
    send(page, type="attach", conversation_id=conversation_id)  # over: nothing to follow
    assert receive(page) == {"type": "attach_none", "conversation_id": conversation_id}


def test_a_page_that_attached_can_stop_the_answer(serve):
    engine = GatedEngine()
    server = serve(engine)
    engine.enqueue(" ".join(f"word{i}" for i in range(100)))
    client = server.connect()
    send(client, type="chat", content="Can you count to one hundred?")
    engine.allow(1)
    conversation_id = receive_until(client, "token")[0]["conversation_id"]
    close(client)
    page = server.connect()
    send(page, type="attach", conversation_id=conversation_id)
    receive_until(page, "token")
    send(page, type="stop")
    done = receive_until(page, "done")[-1]
    assert done["status"] == "stopped" and done["stats"]["tokens"] <= 3
    wait_idle(engine)


@pytest.mark.parametrize("conversation_id", [None, "7", 0, -1, True, 2**63])
def test_a_bad_attach_is_refused(serve, conversation_id):
    server = serve()
    client = server.connect()
    send(client, type="attach", conversation_id=conversation_id)
    assert receive(client)["code"] == "invalid_conversation_id"


def test_bad_frames_get_errors_and_the_connection_stays_usable(serve):
    server = serve()
    client = server.connect()
    client.send("this is not json")
    assert receive(client)["code"] == "invalid_json"
    client.send(b"\xff\xfe")
    assert receive(client)["code"] == "invalid_json"
    send(client, type="dance")
    assert receive(client)["code"] == "unknown_type"
    send(client, type="chat", content="  ")
    assert receive(client)["code"] == "empty_content"
    send(client, type="chat", content="x" * 8001)
    assert receive(client)["code"] == "content_too_long"
    send(client, type="chat", content="Hello!", conversation_id="one")
    assert receive(client)["code"] == "invalid_conversation_id"
    send(client, type="chat", content="Hello!", conversation_id=424242)
    assert receive(client)["code"] == "conversation_not_found"
    send(client, type="chat", content="Hello!")
    events = receive_until(client, "done")
    assert events[-1]["status"] == "complete" and text_of(events).startswith("Hello!")


def test_an_oversize_frame_closes_that_connection_and_the_server_lives_on(serve):
    server = serve()
    client = server.connect()
    client.send("x" * (MAX_FRAME_BYTES + 1))
    with pytest.raises(ConnectionClosed):
        while True:  # nothing but the close may come back
            assert client.receive(timeout=WAIT) is not None, "the connection stayed open"
    assert client.close_reason == 1009  # message too big
    status, health = server.get("/health")
    assert status == 200 and health["status"] == "ok"
    other = server.connect()
    send(other, type="chat", content="Hello!")
    assert receive_until(other, "done")[-1]["status"] == "complete"


def test_a_frame_just_under_the_limit_is_refused_politely(serve):
    server = serve()
    client = server.connect()
    send(client, type="chat", content="x" * (MAX_FRAME_BYTES - 100))
    assert receive(client)["code"] == "content_too_long"
    send(client, type="chat", content="Hello!")
    assert receive_until(client, "done")[-1]["status"] == "complete"


def test_concurrent_connections_are_told_their_place_in_the_queue(serve):
    engine = GatedEngine()
    server = serve(engine)
    questions = ["What is the capital of France?", "What is the capital of Spain?",
                 "What is the capital of Italy?"]
    for reply in ("Paris.", "Madrid.", "Rome."):
        engine.enqueue(reply)
    first, second, third = (server.connect() for _ in questions)

    send(first, type="chat", content=questions[0])
    assert receive(first)["type"] == "conversation"
    assert receive(first)["type"] == "memories"  # its job is running (held by the gate)
    send(second, type="chat", content=questions[1])
    assert receive(second)["type"] == "conversation"
    assert receive(second) == {"type": "queued", "position": 2, "model_loading": False}
    send(third, type="chat", content=questions[2])
    assert receive(third)["type"] == "conversation"
    assert receive(third) == {"type": "queued", "position": 3, "model_loading": False}

    engine.allow(1)  # "Paris." is one token: the first answer ends, the second starts
    assert text_of(receive_until(first, "done")) == "Paris."
    assert receive(second)["type"] == "memories"
    assert receive(third) == {"type": "queued", "position": 2, "model_loading": False}

    engine.open()
    assert text_of(receive_until(second, "done")) == "Madrid."
    rest = receive_until(third, "done")
    assert [event["type"] for event in rest] == ["memories", "token", "done"]
    assert text_of(rest) == "Rome."
    asked = [r.messages[-1]["content"] for r in engine.requests if r.purpose == "chat"]
    assert [text.rsplit("Question: ", 1)[1] for text in asked] == questions


def test_the_api_answers_while_an_answer_streams(serve):
    # The engine is mid-answer (a token held back): listing, adding (which embeds on the
    # inference thread, between two tokens) and searching must all still answer.
    engine = GatedEngine()
    server = serve(engine)
    engine.enqueue(" ".join(f"word{i}" for i in range(50)))
    client = server.connect()
    send(client, type="chat", content="Can you count to fifty?")
    engine.allow(1)
    receive_until(client, "token")

    def call(path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(server.base + path, data=data, headers={
            "Content-Type": "application/json"} if data else {})
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            return response.status, json.loads(response.read())

    assert call("/api/memories")[0] == 200
    status, added = call("/api/memories", {"content": "The spare key is under the mat."})
    assert status == 201
    status, found = call("/api/memories/search?q=spare%20key")
    assert status == 200 and found["results"][0]["memory"]["id"] == added["memory"]["id"]
    assert engine.status()["queue"]["running"]  # the answer is still streaming
    engine.open()
    assert receive_until(client, "done")[-1]["status"] == "complete"
