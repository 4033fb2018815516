"""Reading a conversation ahead (ChatService._read_ahead, Engine.read_ahead): after each
turn the model reads the conversation as the next answer prompt will start, so the next
turn reads only its own message; anything a person waits for goes before a read-ahead."""

from __future__ import annotations

import pytest

from lumara_web.inference.engine import EngineBusy
from lumara_web.storage import db

from .fakes import FakeEngine
from .helpers import GatedEngine, request, started, wait_idle
from .test_chat import chat_requests, remember, requests_for, turn


class ReadingEngine(FakeEngine):
    reads_ahead = True  # as LlamaEngine: it keeps what the model read


@pytest.fixture
def engine():
    return ReadingEngine()


@pytest.fixture
def services(make_app, engine):
    return make_app(engine=engine).extensions["lumara"]


@pytest.fixture
def conn(services):
    connection = db.connect(services.settings["db_path"])
    yield connection
    connection.close()


def test_every_next_prompt_starts_with_what_was_read_ahead(services, conn, engine):
    """Statements (templated replies), questions (model answers) and a history window that
    moves: each read-ahead is exactly the start of the next answer prompt."""
    services.settings["chat_history_messages"] = 4  # the window moves within the test
    remember(services, conn, "My sister Ana lives in Lisbon.")
    engine.default_reply = "Your sister lives in Lisbon."
    conversation = None
    for said in ["Where does my sister live?", "I parked the car on level 3.",
                 "Where does my sister live?", "My dentist is Dr Okafor.",
                 "Where does my sister live?", "Where does my sister live?"]:
        events = turn(services.chat, conn, said, conversation)
        conversation = events[-1]["conversation_id"]
        wait_idle(engine)
    read = requests_for(engine, "prefill")
    asked = chat_requests(engine)
    assert len(read) == 6 and len(asked) == 4
    assert all(prefill.max_tokens == 1 for prefill in read)
    for sent in asked[1:]:  # each question after the first: the read-ahead just before it
        position = engine.requests.index(sent)
        prefill = [r for r in engine.requests[:position] if r.purpose == "prefill"][-1]
        assert sent.messages[:len(prefill.messages)] == prefill.messages
        assert len(sent.messages) == len(prefill.messages) + 1  # only the new question
    # The last one holds the whole conversation's window, ending with the last answer.
    assert read[-1].messages[-1] == {"role": "assistant",
                                     "content": "Your sister lives in Lisbon."}


def test_nothing_is_read_ahead_where_the_engine_keeps_no_state(make_app):
    engine = FakeEngine()  # as a remote engine: each request stands alone
    services = make_app(engine=engine).extensions["lumara"]
    connection = db.connect(services.settings["db_path"])
    try:
        turn(services.chat, connection, "I parked the car on level 3.")
        wait_idle(engine)
    finally:
        connection.close()
    assert requests_for(engine, "prefill") == []


def test_a_person_waits_for_no_read_ahead(make_app):
    engine = GatedEngine(gated=("chat",))
    engine.reads_ahead = True
    make_app(engine=engine)
    warmed = len(engine.requests)
    busy = engine.submit(request("first"))
    started(busy)
    ahead = engine.read_ahead([{"role": "user", "content": "earlier"}])
    asked = engine.submit(request("second"))
    assert engine.position(asked) == 2 and engine.position(ahead) == 3
    engine.open()
    wait_idle(engine)
    order = [sent.messages[-1]["content"] for sent in engine.requests[warmed:]]
    assert order == ["first", "second", "earlier"]


def test_a_waiting_read_ahead_gives_its_place_in_a_full_queue_to_a_person():
    engine = GatedEngine(max_queue=2)
    engine.reads_ahead = True
    running = engine.submit(request("running"))
    started(running)
    ahead = engine.read_ahead([{"role": "user", "content": "earlier"}])
    waiting = engine.submit(request("waiting"))
    assert engine.read_ahead([{"role": "user", "content": "more"}]) is None  # full: refused
    asked = engine.submit(request("asked"))  # full too, but the read-ahead makes room
    assert ahead.finished.is_set() and ahead.text() == ""
    with pytest.raises(EngineBusy):
        engine.submit(request("one too many"))  # people's jobs are never dropped
    engine.open()
    assert [job.text() for job in (running, waiting, asked)] == ["OK."] * 3
    assert "earlier" not in [sent.messages[-1]["content"] for sent in engine.requests]
    wait_idle(engine)


def test_a_running_read_ahead_does_not_count_as_a_queue(make_app):
    engine = GatedEngine(gated=("prefill",))
    engine.reads_ahead = True
    make_app(engine=engine)
    ahead = engine.read_ahead([{"role": "user", "content": "earlier"}])
    started(ahead)
    asked = engine.submit(request("now"))
    assert engine.position(asked) == 1  # the chat shows no "waiting" for it
    engine.open()
    wait_idle(engine)


def test_a_read_ahead_still_waiting_is_dropped_when_the_next_turn_comes(make_app):
    engine = GatedEngine(gated=("judge",))
    engine.reads_ahead = True
    services = make_app(engine=engine).extensions["lumara"]
    connection = db.connect(services.settings["db_path"])
    try:
        busy = engine.submit(request("another job", purpose="judge"))
        started(busy)
        # Nothing remembered: the honest "no memory" reply needs no model; its read-ahead
        # waits behind the busy model.
        turn(services.chat, connection, "Where did I park the car?")
        waiting = services.chat._reading_ahead
        assert waiting is not None and not waiting.started.is_set()
        # The next turn drops it before anything else: its own prompt reads all of it.
        events = services.chat.turn(connection, services.chat.parse_request(
            {"content": "Where is my passport?"}))
        next(events)
        assert waiting.stop.is_set()
        engine.open()
        list(events)
        wait_idle(engine)
    finally:
        connection.close()
    assert sum(sent.purpose == "prefill" for sent in engine.requests) == 1  # the last turn's


def test_a_quoted_memory_is_read_back_without_its_lead_in(services, conn, engine):
    """The page shows "Here is what I remember: …"; later prompts replay the memory in the
    examples' voice, so the model does not learn the lead-in and copy it."""
    remember(services, conn, "My sister Ana lives in Lisbon.")
    engine.enqueue("Your sister lives in Paris.")  # not what the memory says: replaced
    first = turn(services.chat, conn, "Where does my sister live?")
    assert first[-1]["text"] == "Here is what I remember: your sister Ana lives in Lisbon."
    turn(services.chat, conn, "Where does my sister live?", first[-1]["conversation_id"])
    replayed = chat_requests(engine)[-1].messages[-2]
    assert replayed == {"role": "assistant", "content": "Your sister Ana lives in Lisbon."}
