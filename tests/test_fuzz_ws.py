"""Property-based fuzzing of the chat websocket, /ws/chat (Hypothesis, the fakes).

Three layers:
1. ChatSession with a list-backed socket (tests/helpers.py's Recorder): frames as
   text or bytes — invalid UTF-8, non-JSON, JSON non-objects, deep nesting, wrong types
   for type/content/conversation_id, huge content. handle() never raises; a refused frame
   gets exactly one error event at once and changes nothing; an accepted message ends with
   turn_end and never an internal_error; the database stays whole.
2. The same frames through a real socket (tests/helpers.py's LiveServer and a
   simple_websocket client), frames over 256 KB included: those close that connection
   (1009), the server lives on.
3. Raw frames (tests/helpers.py's RawWebSocket): any opcode, fragments, reserved bits,
   unmasked, text frames that are not UTF-8, oversize. The connection answers a ping
   afterwards or was closed with a protocol code; the server lives on.

Reproducible: derandomize=True, no example database.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from simple_websocket import ConnectionClosed

from lumara_web.chat.session import ChatSession
from lumara_web.storage import conversation_store, db
from lumara_web.web.chat_socket import MAX_FRAME_BYTES

from .helpers import (
    WAIT,
    LiveServer,
    RawWebSocket,
    Recorder,
    assert_database_whole,
    build_app,
    snapshot,
)
from .strategies import (
    HUGE_INTS,
    any_char,
    json_values,
    long_text,
    nested,
    short_odd_text,
    weighted,
)

MAX_MESSAGE = 8_000  # default max_message_chars


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example])


# -- frames -----------------------------------------------------------------------------
MESSAGES = ["Hello!", "thanks", "What is my sister's name?", "My dog is called Rex.",
            "I think I like green tea today.", "Where did I put the kettle?", "  padded  ",
            "Ünïcödé ✓ 👩‍👩‍👧‍👦", "\u202eright to left\u202c", "e\u0301" * 40]
NOT_JSON = [b"", b" ", b"{", b"chat", b"{'type': 'chat'}", b'{"type": "chat",}', b"\x00",
            b"\xff\xfe\xfd", b'{"type": "chat", "content": "\xed\xa0\x80"}',
            b'\xef\xbb\xbf{"type": "stop"}', b'{"type": NaN}', b"[" * 100_000]
NOT_OBJECTS = [b"null", b"true", b"42", b"1e309", b'"chat"', b"[]", b'[{"type": "chat"}]']


@st.composite
def chat_frames(draw, conversation_ids: list[int]) -> dict:
    frame = {"type": draw(weighted((8, st.just("chat")), (1, st.just("stop")),
                                   (1, st.sampled_from(["", "Chat", "CHAT", "dance"])),
                                   (1, json_values)))}
    if draw(st.integers(0, 9)) < 9:
        frame["content"] = draw(weighted(
            (6, st.sampled_from(MESSAGES)), (2, short_odd_text), (1, json_values),
            (1, long_text(MAX_MESSAGE, MAX_MESSAGE + 1, 100_000))))
    if draw(st.integers(0, 9)) < 4:
        # By position, not value: the strategy must not depend on the database's state.
        pick = st.integers(0, 1_000).map(
            lambda i: conversation_ids[i % len(conversation_ids)] if conversation_ids else 1)
        frame["conversation_id"] = draw(weighted(
            (3, pick), (1, st.integers(-3, 3)), (1, st.sampled_from(HUGE_INTS)),
            (1, json_values)))
    if draw(st.integers(0, 19)) == 0:
        frame[draw(st.text(any_char, max_size=6))] = draw(json_values)
    return frame


def encode(frame, ascii_only: bool) -> bytes:
    # Not ASCII-only, a lone surrogate goes out as raw bytes: invalid UTF-8.
    return json.dumps(frame, ensure_ascii=ascii_only, allow_nan=True).encode(
        "utf-8", "surrogatepass")


def raw_frames(conversation_ids: list[int]) -> st.SearchStrategy[bytes]:
    deep = st.builds(lambda depth, opener: f'{{"type": {nested(depth, opener)}}}'.encode(),
                     st.one_of(st.integers(1, 40), st.integers(400, 1_100)),
                     st.sampled_from(["[", "{"]))
    return weighted(
        (10, st.builds(encode, chat_frames(conversation_ids), st.booleans())),
        (2, st.sampled_from(NOT_JSON)),
        (1, st.sampled_from(NOT_OBJECTS)),
        (1, st.builds(encode, json_values, st.just(True))),
        (1, deep),
        (1, st.binary(max_size=64)),
    )


def as_sent(raw: bytes, binary: bool) -> str | bytes:
    """The frame as a websocket delivers it: bytes for a binary frame, text for a text
    frame (which can only carry valid UTF-8; others are sent as binary)."""
    if binary:
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def kind_of(frame: str | bytes):
    """The frame's "type", read as ChatSession reads it (UTF-8 only); None if unreadable."""
    try:
        parsed = json.loads(frame.decode("utf-8") if isinstance(frame, bytes) else frame)
    except (ValueError, RecursionError):
        return None
    return parsed.get("type") if isinstance(parsed, dict) else None


def assert_event_shape(event: dict) -> None:
    assert isinstance(event, dict) and isinstance(event.get("type"), str), event
    if event["type"] == "error":
        assert isinstance(event["code"], str) and event["code"], event
        assert isinstance(event["message"], str) and event["message"].strip(), event
        assert event["code"] != "internal_error", event


# -- 1. ChatSession, list-backed --------------------------------------------------------
@pytest.fixture(scope="module")
def chat_app(tmp_path_factory):
    return build_app(tmp_path_factory.mktemp("fuzz-ws") / "data")


def conversation_ids(app) -> list[int]:
    conn = db.connect(app.extensions["lumara"].settings["db_path"])
    try:
        if not conversation_store.list_conversations(conn)[1]:
            conversation_store.create_conversation(conn, "Fuzzed")
        return [row[0] for row in conn.execute("SELECT id FROM conversations ORDER BY id")]
    finally:
        conn.close()


@fuzz_settings(150)
@given(data=st.data())
def test_no_frame_breaks_a_chat_session(chat_app, data):
    ids = conversation_ids(chat_app)
    settings_ = chat_app.extensions["lumara"].settings
    sent = Recorder()
    session = ChatSession(chat_app.extensions["lumara"].chat,
                          connect_db=lambda: db.connect(settings_["db_path"]), send=sent)
    turns = 0
    try:
        for _ in range(data.draw(st.integers(1, 3), label="frames")):
            frame = as_sent(data.draw(raw_frames(ids), label="frame"),
                            data.draw(st.booleans(), label="binary?"))
            before, seen = snapshot(chat_app), len(sent.events)
            session.handle(frame)  # never raises: every problem is an event
            answered = sent.events[seen:]
            if answered:  # refused at once, on the caller's thread
                assert len(answered) == 1 and answered[0]["type"] == "error", answered
                event(f"refused {answered[0]['code']}")
                assert snapshot(chat_app) == before, "a refused frame changed the data"
            elif kind_of(frame) == "chat":
                turns += 1
                sent.wait_for("turn_end", turns)
                events = sent.events[seen:]
                errors = [item for item in events if item["type"] == "error"]
                event("answered" if not errors else f"turn error {errors[0]['code']}")
                if errors and "done" not in {item["type"] for item in events} \
                        and "conversation_id" not in errors[0]:
                    # Refused before anything was stored (e.g. an unknown conversation).
                    assert snapshot(chat_app) == before, "a refused message changed the data"
            else:
                event("stop")
        for item in sent.events:
            assert_event_shape(item)
    finally:
        session.close()
        session.join(WAIT)
    assert not session._worker.is_alive()
    assert_database_whole(chat_app)


# -- 2. the same frames through a real socket -------------------------------------------
@pytest.fixture(scope="module")
def live(chat_app):
    server = LiveServer(chat_app)
    yield server
    server.stop()


def receive_event(client) -> dict:
    raw = client.receive(timeout=WAIT)
    assert raw is not None, "no event arrived in time"
    event_ = json.loads(raw)
    assert_event_shape(event_)
    return event_


def assert_server_answers(server: LiveServer) -> None:
    status, health = server.get("/health")
    assert status == 200 and health["status"] in ("ok", "starting"), health


@fuzz_settings(40)
@given(data=st.data())
def test_no_frame_breaks_the_websocket(live, data):
    ids = conversation_ids(live.app)
    client = live.connect()
    try:
        for _ in range(data.draw(st.integers(1, 2), label="frames")):
            if data.draw(st.integers(0, 9), label="oversize?") == 0:
                piece = data.draw(st.sampled_from(["x", "é", "😀"]))
                size = MAX_FRAME_BYTES // len(piece.encode()) + 1
                client.send(json.dumps({"type": "chat", "content": piece * size},
                                       ensure_ascii=False))
                with pytest.raises(ConnectionClosed):
                    while True:  # nothing but the close may come back
                        assert client.receive(timeout=WAIT) is not None, "still open"
                assert client.close_reason == 1009
                event("oversize: closed 1009")
                break
            frame = as_sent(data.draw(raw_frames(ids), label="frame"),
                            data.draw(st.booleans(), label="binary?"))
            client.send(frame)
            kind = kind_of(frame)
            if kind == "stop":
                event("stop")
                continue
            first = receive_event(client)
            if first["type"] == "error" and kind != "chat":
                event(f"refused {first['code']}")
                continue
            if first["type"] == "error" and "conversation_id" not in first:
                event(f"refused {first['code']}")
                if first["code"] != "conversation_not_found":
                    continue  # refused at once; else the turn ends with turn_end
            events = [first]
            while events[-1]["type"] != "turn_end":
                events.append(receive_event(client))
            event("answered")
    finally:
        try:
            client.close()
        except ConnectionClosed:
            pass
    assert_server_answers(live)
    assert_database_whole(live.app)


# -- 3. raw frames ----------------------------------------------------------------------
PROTOCOL_CLOSES = {1002, 1007, 1009}  # protocol error, invalid data, too big
PING, PONG, CLOSE = 0x9, 0xA, 0x8


@st.composite
def wire_frames(draw) -> dict:
    payload = draw(weighted(
        (4, st.builds(encode, chat_frames([]), st.booleans())),
        (2, st.binary(max_size=200)),
        (1, st.sampled_from(NOT_JSON[:-1] + NOT_OBJECTS)),
        (1, st.just(b" " * (MAX_FRAME_BYTES + 1)))))
    # Mostly well-formed text and binary frames, so that the payloads reach the chat too.
    return {"opcode": draw(st.sampled_from([0x1] * 10 + [0x2] * 4 + [0x0, 0x3, 0x7, 0xB,
                                                                     PING, PONG, CLOSE])),
            "payload": payload,
            "fin": draw(st.integers(0, 9)) > 0,
            "rsv1": draw(st.integers(0, 19)) == 0,
            "masked": draw(st.integers(0, 19)) > 0}


@fuzz_settings(60)
@given(frame=wire_frames())
def test_no_raw_frame_breaks_the_server(live, frame):
    ws = RawWebSocket(live.port)
    try:
        ws.send_frame(frame["opcode"], frame["payload"], fin=frame["fin"],
                      rsv1=frame["rsv1"], masked=frame["masked"])
        ws.send_frame(PING, b"still there?")
        while True:  # events of a chat the frame started may come first
            received = ws.receive()
            if received is None:
                event("closed without a close frame")
                break
            opcode, payload = received
            if opcode == PONG and payload == b"still there?":
                event("still open")
                break
            if opcode == CLOSE:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                event(f"closed {code}")
                if frame["opcode"] != CLOSE:  # a client's close is echoed, whatever it says
                    assert code in PROTOCOL_CLOSES, (code, payload)
                break
            if opcode == 0x1:
                assert_event_shape(json.loads(payload))
    finally:
        ws.close()
    assert_server_answers(live)
