"""Bodies and frames over the limits are refused before they are read whole, on a real server
socket (tests/helpers.py's LiveServer): raw HTTP through http.client, raw websocket frames
through a socket.

- HTTP: MAX_CONTENT_LENGTH (max_request_bytes, 1 MB). With a Content-Length over it the 413
  comes before any of the body is sent; a chunked body (no Content-Length) is refused once
  it passes the limit, while the client is still sending.
- Websocket: frames over 256 KB close the connection with 1009, whether one frame, many
  fragments, or a small compressed frame that inflates past the limit.
"""

from __future__ import annotations

import http.client
import json
import zlib

import pytest

from lumara_web.web.chat_socket import MAX_FRAME_BYTES

from .helpers import WAIT, LiveServer, RawWebSocket, build_app, receive_until, send

MAX_REQUEST = 1_000_000  # default max_request_bytes
CHUNK = 64 * 1024

# Every endpoint that reads a JSON body (the ids need not exist: the body is read first).
BODY_ENDPOINTS = [("POST", "/api/memories"), ("POST", "/api/memories/check"),
                  ("PATCH", "/api/memories/1"), ("PATCH", "/api/conversations/1"),
                  ("POST", "/api/suggestions/1/accept"),
                  ("POST", "/api/contradictions/1/resolve"),
                  ("POST", "/api/metrics/page-load")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(build_app(tmp_path_factory.mktemp("limits") / "data"))
    yield live
    live.stop()


# -- HTTP -------------------------------------------------------------------------------
def connection(server: LiveServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)


def start(conn, method: str, path: str, **headers: str) -> None:
    conn.putrequest(method, path)
    conn.putheader("Content-Type", "application/json")
    for name, value in headers.items():
        conn.putheader(name.replace("_", "-"), value)
    conn.endheaders()


def send_chunk(conn, data: bytes) -> None:
    conn.send(b"%x\r\n%s\r\n" % (len(data), data))


def json_response(conn) -> tuple[int, dict]:
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    return response.status, body


def assert_too_large(status: int, body: dict) -> None:
    assert status == 413, body
    assert body["error"]["code"] == "request_entity_too_large" and body["error"]["message"]


def padded(size: int, content: str = "sent in chunks") -> bytes:
    """A JSON object of exactly `size` bytes (whitespace after it is still valid JSON)."""
    head = json.dumps({"content": content}).encode()
    return head + b" " * (size - len(head))


def memory_total(server) -> int:
    return server.get("/api/memories")[1]["total"]


def assert_server_lives(server) -> None:
    status, health = server.get("/health")
    assert status == 200 and health["database"]["memories"] == memory_total(server)


@pytest.mark.parametrize("method, path", BODY_ENDPOINTS)
def test_a_content_length_over_the_limit_is_refused_before_the_body_is_sent(server, method,
                                                                           path):
    conn = connection(server)
    start(conn, method, path, Content_Length=str(10 * 1024**3))  # 10 GB announced, 0 sent
    assert_too_large(*json_response(conn))
    assert_server_lives(server)


@pytest.mark.parametrize("method, path", BODY_ENDPOINTS)
def test_a_chunked_body_is_refused_while_it_is_still_being_sent(server, method, path):
    conn = connection(server)
    start(conn, method, path, Transfer_Encoding="chunked")
    sent = 0
    while sent <= MAX_REQUEST:
        send_chunk(conn, b" " * CHUNK)
        sent += CHUNK
    # The body has not ended (no last chunk): the answer can only come from the limit.
    assert_too_large(*json_response(conn))
    assert_server_lives(server)


def test_a_chunked_body_over_the_limit_is_refused_even_if_its_first_megabyte_is_json(server):
    # Werkzeug's own cap stopped reading at 1 MB and saved this memory (201): the JSON
    # object, padding to the limit, then bytes that make the whole body invalid.
    before = memory_total(server)
    conn = connection(server)
    start(conn, "POST", "/api/memories", Transfer_Encoding="chunked")
    send_chunk(conn, padded(MAX_REQUEST) + b"garbage after the limit")
    send_chunk(conn, b"")
    assert_too_large(*json_response(conn))
    assert memory_total(server) == before


def test_chunked_bodies_up_to_the_limit_are_read(server):
    before = memory_total(server)
    conn = connection(server)
    start(conn, "POST", "/api/memories", Transfer_Encoding="chunked")
    body = padded(MAX_REQUEST, "exactly at the limit")
    for offset in range(0, len(body), CHUNK):
        send_chunk(conn, body[offset:offset + CHUNK])
    send_chunk(conn, b"")
    status, created = json_response(conn)
    assert status == 201, created
    assert created["memory"]["content"] == "exactly at the limit"
    assert memory_total(server) == before + 1

    conn = connection(server)
    start(conn, "POST", "/api/memories", Transfer_Encoding="chunked")
    send_chunk(conn, padded(MAX_REQUEST + 1))
    send_chunk(conn, b"")
    assert_too_large(*json_response(conn))
    assert memory_total(server) == before + 1


def test_a_content_length_at_the_limit_is_read_and_one_more_byte_is_refused(server):
    before = memory_total(server)
    for size, expected in ((MAX_REQUEST, 201), (MAX_REQUEST + 1, 413)):
        conn = connection(server)
        start(conn, "POST", "/api/memories", Content_Length=str(size))
        if expected == 201:
            conn.send(padded(size, "a full megabyte"))
        status, body = json_response(conn)
        assert status == expected, body
    assert memory_total(server) == before + 1


@pytest.mark.parametrize("value", ["-1", "abc", "1e3", ""])
def test_an_unreadable_content_length_is_no_body_and_no_crash(server, value):
    conn = connection(server)
    start(conn, "POST", "/api/memories", Content_Length=value)
    status, body = json_response(conn)
    assert status == 400 and body["error"]["code"] == "invalid_json", body
    assert_server_lives(server)


# -- websocket --------------------------------------------------------------------------
MESSAGE_TOO_BIG = 1009


def assert_chat_still_works(server) -> None:
    status, health = server.get("/health")
    assert status == 200
    client = server.connect()
    send(client, type="chat", content="Hello!")
    assert receive_until(client, "done")[-1]["status"] == "complete"


def test_a_frame_that_announces_a_gigabyte_is_refused_before_it_arrives(server):
    ws = RawWebSocket(server.port)
    try:
        ws.send_frame(0x1, b" " * (MAX_FRAME_BYTES + CHUNK), declared=2**30)
        assert ws.close_code() == MESSAGE_TOO_BIG  # the other ~1 GB was never sent
    finally:
        ws.close()
    assert_chat_still_works(server)


def test_fragments_that_add_up_past_the_limit_are_refused(server):
    ws = RawWebSocket(server.port)
    try:
        fragments = MAX_FRAME_BYTES // CHUNK + 1
        ws.send_frame(0x1, b" " * CHUNK, fin=False)
        for _ in range(fragments - 1):
            ws.send_frame(0x0, b" " * CHUNK, fin=False)  # continuation, never the last
        assert ws.close_code() == MESSAGE_TOO_BIG
    finally:
        ws.close()
    assert_chat_still_works(server)


def test_a_small_compressed_frame_that_inflates_past_the_limit_is_refused(server):
    ws = RawWebSocket(server.port, extensions="permessage-deflate")
    try:
        assert "permessage-deflate" in ws.handshake
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        bomb = compressor.compress(b" " * (64 * 1024 * 1024)) + compressor.flush(
            zlib.Z_SYNC_FLUSH)
        bomb = bomb.removesuffix(b"\x00\x00\xff\xff")  # RFC 7692: the tail is implied
        assert len(bomb) < MAX_FRAME_BYTES  # 64 MB inflated, ~64 KB on the wire
        ws.send_frame(0x1, bomb, rsv1=True)
        assert ws.close_code() == MESSAGE_TOO_BIG
    finally:
        ws.close()
    assert_chat_still_works(server)


def test_a_text_frame_that_is_not_utf8_closes_that_connection_cleanly(server):
    ws = RawWebSocket(server.port)
    try:
        ws.send_text(b'{"type": "chat", "content": "\xff\xfe"}')
        assert ws.close_code() == 1007  # invalid frame payload data
    finally:
        ws.close()
    assert_chat_still_works(server)


def test_a_binary_frame_that_is_not_utf8_gets_an_error_and_the_connection_goes_on(server):
    ws = RawWebSocket(server.port)
    try:
        ws.send_frame(0x2, b'{"type": "chat", "content": "\xff\xfe"}')
        assert ws.event()["code"] == "invalid_json"
        ws.send_text(json.dumps({"type": "chat", "content": "Hello!"}).encode())
        events = [ws.event()]
        while events[-1]["type"] != "done":
            events.append(ws.event())
        assert events[-1]["status"] == "complete"
    finally:
        ws.close()
