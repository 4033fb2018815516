"""ChatSession: the websocket protocol without a websocket. Frames go in through handle();
events come out through a list-backed send; turns run on the session's own thread."""

from __future__ import annotations

import json

import pytest

from lumara_web.chat.session import ChatSession
from lumara_web.storage import conversation_store, db

from .fakes import FakeEngine
from .helpers import WAIT, GatedEngine, Recorder, text_of, wait_idle

LONG_REPLY = " ".join(f"word{i}" for i in range(100))


class Harness:
    def __init__(self, app, **session_options):
        self.app = app
        self.engine = app.extensions["lumara"].engine
        self.settings = self.app.extensions["lumara"].settings
        self.sent = Recorder(session_options.pop("fail_on", None))
        self.session = ChatSession(self.app.extensions["lumara"].chat,
                                   connect_db=lambda: db.connect(self.settings["db_path"]),
                                   send=self.sent, **session_options)

    def frame(self, **fields) -> None:
        self.session.handle(json.dumps(fields))

    def chat(self, content: str, **fields) -> None:
        self.frame(type="chat", content=content, **fields)

    def messages(self, conversation_id: int):
        conn = db.connect(self.settings["db_path"])
        try:
            return conversation_store.list_messages(conn, conversation_id)
        finally:
            conn.close()

    def close(self) -> None:
        self.session.close()
        self.session.join(WAIT)
        assert not self.session._worker.is_alive()


@pytest.fixture
def make(make_app):
    made = []

    def factory(engine=None, **options):
        harness = Harness(make_app(engine=engine or FakeEngine()), **options)
        made.append(harness)
        return harness

    yield factory
    for harness in made:
        if isinstance(harness.engine, GatedEngine):
            harness.engine.open()
        harness.close()


BAD_FRAMES = [
    ("not json at all", "invalid_json"),
    (b"\xff\xfe{}", "invalid_json"),
    ("[" * 100_000, "invalid_json"),  # nested too deep to parse
    ("[1, 2]", "invalid_frame"),
    ('"chat"', "invalid_frame"),
    ("null", "invalid_frame"),
    ('{"type": "dance"}', "unknown_type"),
    ("{}", "unknown_type"),
    ('{"type": "chat"}', "empty_content"),
    ('{"type": "chat", "content": "   \\n "}', "empty_content"),
    ('{"type": "chat", "content": 42}', "invalid_content"),
    (json.dumps({"type": "chat", "content": "x" * 8001}), "content_too_long"),
    ('{"type": "chat", "content": "a\\u0000b"}', "invalid_content"),
    ('{"type": "chat", "content": "lone \\ud800 surrogate"}', "invalid_content"),
    ('{"type": "chat", "content": "Hi", "conversation_id": "5"}', "invalid_conversation_id"),
    ('{"type": "chat", "content": "Hi", "conversation_id": 1.5}', "invalid_conversation_id"),
    ('{"type": "chat", "content": "Hi", "conversation_id": true}', "invalid_conversation_id"),
    ('{"type": "chat", "content": "Hi", "conversation_id": 0}', "invalid_conversation_id"),
    ('{"type": "chat", "content": "Hi", "conversation_id": -3}', "invalid_conversation_id"),
    ('{"type": "chat", "content": "Hi", "conversation_id": 9223372036854775808}',
     "invalid_conversation_id"),
]


@pytest.mark.parametrize("raw, code", BAD_FRAMES, ids=[code for _, code in BAD_FRAMES])
def test_a_bad_frame_gets_an_error_and_the_session_still_answers(make, raw, code):
    h = make()
    h.session.handle(raw)
    [error] = h.sent.events  # sent at once, on the caller's thread
    assert error["type"] == "error" and error["code"] == code and error["message"]
    h.chat("Hello!")
    done = h.sent.wait_for("done")[0]
    assert done["status"] == "complete"
    assert text_of(h.sent.events).startswith("Hello!")
    assert h.sent.of("error") == [error]


def test_exactly_the_longest_message_is_accepted(make):
    h = make()
    content = ("word " * 1600)[:7999] + "."
    assert len(content) == 8000
    h.chat(content)
    done = h.sent.wait_for("done")[0]
    assert h.sent.of("error") == []
    assert h.messages(done["conversation_id"])[0].content == content


def test_an_unknown_conversation_is_an_error_and_the_session_goes_on(make):
    h = make()
    h.chat("Hello!", conversation_id=12345)
    [error] = h.sent.wait_for("error")
    assert error["code"] == "conversation_not_found"
    h.chat("Hello!")
    assert h.sent.wait_for("done")[0]["status"] == "complete"


def test_a_stop_frame_mid_answer_stops_it(make):
    h = make(FakeEngine(token_delay=0.02))
    h.engine.enqueue(LONG_REPLY)
    h.chat("Can you count to one hundred?")
    h.sent.wait_for("token")
    h.frame(type="stop")
    done = h.sent.wait_for("done")[0]
    assert done["status"] == "stopped"
    tokens = h.sent.of("token")
    assert 1 <= len(tokens) < 100 and done["stats"]["tokens"] == len(tokens)
    assert h.messages(done["conversation_id"])[-1].status == "stopped"
    wait_idle(h.engine)  # the generation ended with the turn
    h.chat("Hello!")  # and the next message is answered normally
    assert h.sent.wait_for("done", 2)[1]["status"] == "complete"


def test_closing_mid_answer_sends_nothing_more_and_the_answer_is_kept(make):
    engine = GatedEngine()
    h = make(engine)
    engine.enqueue(LONG_REPLY)
    h.chat("Can you count to one hundred?")
    engine.allow(1)
    h.sent.wait_for("token")  # one token out; the second waits in the engine
    sent_before = h.sent.calls
    h.session.close()  # a reload: the answer goes on, for the conversation to keep
    engine.open()
    h.session.join(WAIT)
    assert not h.session._worker.is_alive()
    assert h.sent.calls == sent_before
    [answer] = [m for m in h.messages(1) if m.role == "assistant"]
    assert (answer.content, answer.status) == (LONG_REPLY, "complete")


def test_a_send_that_fails_sends_nothing_more_and_the_answer_is_kept(make):
    engine = GatedEngine()
    h = make(engine, fail_on="token")
    engine.enqueue(LONG_REPLY)
    h.chat("Can you count to one hundred?")
    engine.allow(1)
    assert h.sent.failed.wait(WAIT)
    calls = h.sent.calls
    engine.open()
    h.session.join(WAIT)
    assert not h.session._worker.is_alive()
    assert h.sent.calls == calls  # nothing more was sent to the gone client
    [answer] = [m for m in h.messages(1) if m.role == "assistant"]
    assert answer.status == "complete"


def test_messages_waiting_when_the_page_leaves_are_dropped(make):
    engine = GatedEngine()
    h = make(engine)
    engine.enqueue("first answer")
    h.chat("What is the first thing?")
    h.chat("What is the second thing?")  # waits for the first
    h.sent.wait_for("memories")
    h.session.close()
    engine.open()
    h.session.join(WAIT)
    assert [m.content for m in h.messages(1)] == ["What is the first thing?", "first answer"]
    assert h.messages(2) == []


def test_too_many_waiting_messages_are_refused_with_busy(make):
    engine = GatedEngine()
    h = make(engine, max_pending=2)
    for reply in ("first answer", "second answer", "third answer"):
        engine.enqueue(reply)
    h.chat("What is the first thing?")
    h.sent.wait_for("memories")  # the first turn runs: it no longer counts as waiting
    h.chat("What is the second thing?")
    h.chat("What is the third thing?")
    assert h.sent.of("error") == []
    h.chat("What is the fourth thing?")
    [busy] = h.sent.of("error")
    assert busy["code"] == "busy"
    engine.open()
    done = h.sent.wait_for("done", 3)
    assert [event["status"] for event in done] == ["complete"] * 3
    wait_idle(engine)
    asked = [r.messages[-1]["content"] for r in engine.requests if r.purpose == "chat"]
    assert [question.rsplit("Question: ", 1)[1] for question in asked] == [
        "What is the first thing?", "What is the second thing?", "What is the third thing?"]


def test_two_messages_in_a_row_are_answered_in_order(make):
    h = make(FakeEngine(token_delay=0.005))
    h.engine.enqueue("Paris is the capital of France.")
    h.engine.enqueue("Rome is the capital of Italy.")
    h.chat("What is the capital of France?")
    h.chat("What is the capital of Italy?")
    h.sent.wait_for("turn_end", 2)
    kinds = [event["type"] for event in h.sent.events]
    split = kinds.index("turn_end") + 1
    first, second = h.sent.events[:split], h.sent.events[split:]
    turn = ["conversation", "memories"] + ["token"] * 6 + ["done", "turn_end"]
    assert [e["type"] for e in first] == turn
    assert [e["type"] for e in second] == turn
    assert text_of(first) == "Paris is the capital of France."
    assert text_of(second) == "Rome is the capital of Italy."
    assert first[-2]["conversation_id"] != second[-2]["conversation_id"]
    # turn_end names the conversation the turn happened in.
    assert first[-1]["conversation_id"] == first[-2]["conversation_id"]


def test_a_follow_up_in_the_same_conversation_is_answered_in_it(make):
    h = make()
    h.chat("Hello!")
    conversation_id = h.sent.wait_for("done")[0]["conversation_id"]
    h.chat("Thanks!", conversation_id=conversation_id)
    assert h.sent.wait_for("done", 2)[1]["conversation_id"] == conversation_id
    assert [m.role for m in h.messages(conversation_id)] == ["user", "assistant"] * 2


def test_a_statement_sends_its_memory_events_after_done(make):
    h = make()
    h.engine.enqueue({"content": "My dog is called Rex.", "tags": ["pets"]}, "extract")
    h.chat("My dog is called Rex.")
    saved = h.sent.wait_for("memory_saved")[0]
    kinds = [event["type"] for event in h.sent.events]
    assert kinds.index("done") < kinds.index("memory_saved")
    assert saved["memory"]["content"] == "My dog is called Rex."


def test_turn_end_follows_the_memory_events_and_errors_too(make):
    h = make()
    h.engine.enqueue({"content": "My dog is called Rex.", "tags": ["pets", "dog"]},
                     purpose="extract")
    h.chat("My dog is called Rex and he is a beagle.")
    events = h.sent.wait_for("turn_end")
    kinds = [event["type"] for event in h.sent.events]
    assert kinds[-1] == "turn_end" and kinds.index("done") < kinds.index("turn_end")
    assert "memory_saved" in kinds[kinds.index("done"):]
    assert events[0]["conversation_id"] is not None
    h.chat("Where is it?", conversation_id=10**9)  # unknown conversation: an error, then end
    h.sent.wait_for("turn_end", 2)
    tail = [event["type"] for event in h.sent.events][len(kinds):]
    assert tail == ["error", "turn_end"]
