"""Attacks a hostile local client can make, replayed on a real server process (loopback
only, bounded in count and time): each is refused with a 4xx or a close, changes nothing,
and leaves no thread, socket or memory behind."""

from __future__ import annotations

import socket
import time

import pytest
from simple_websocket import Client, ConnectionClosed
from wsproto.connection import ConnectionState
from wsproto.events import TextMessage
from wsproto.utilities import LocalProtocolError

from lumara_web.web.chat_socket import MAX_FRAME_BYTES

from .live_server import WAIT_TIMEOUT, AppProcess

pytestmark = pytest.mark.live_server

# Slack over the baseline for threads the server starts on its own (a daily timer, a
# pool worker that lingers a moment): far below the 100 an attack of 100 would leave.
THREAD_SLACK = 4
SETTLE_SECONDS = 10  # "within a few seconds": how long the counts may take to return


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedding_cache_dir):
    data_dir = tmp_path_factory.mktemp("hostile") / "lumara"
    process = AppProcess(data_dir, models_dir=embedding_cache_dir)
    process.data_dir = data_dir
    try:
        process.wait_until("ok")
        process.wait_idle()  # the warm-up answers are done: their threads exist
        yield process
    finally:
        process.stop()


def wait_for_baseline(process: AppProcess, baseline: tuple[int, int]) -> tuple[int, int]:
    """The counts once they are back at the baseline (threads within THREAD_SLACK), or the
    last counts seen when SETTLE_SECONDS run out."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        now = process.threads_and_files()
        if (now[0] <= baseline[0] + THREAD_SLACK and now[1] <= baseline[1]) \
                or time.monotonic() > deadline:
            return now
        time.sleep(0.1)


def closed_by_server(client: Client) -> int | None:
    """The close code the server sent, once it closed the connection."""
    try:
        while client.receive(timeout=WAIT_TIMEOUT) is not None:
            pass
    except ConnectionClosed:
        pass
    return client.close_reason


def send_in_fragments(client: Client, total_bytes: int, fragment_bytes: int) -> None:
    """One text message of `total_bytes`, sent as continuation frames of `fragment_bytes`
    (each under the frame limit; together over it), until the server closes."""
    sent = 0
    while sent < total_bytes and client.ws.state == ConnectionState.OPEN:
        size = min(fragment_bytes, total_bytes - sent)
        sent += size
        try:
            client.sock.send(client.ws.send(TextMessage(data="x" * size,
                                                        message_finished=sent >= total_bytes)))
        except (LocalProtocolError, OSError):  # the server's close arrived meanwhile
            return


@pytest.mark.parametrize("attack", ["one oversized frame", "fragments adding up"])
def test_oversized_websocket_messages_leave_no_thread_or_socket(server, attack):
    baseline = server.threads_and_files()
    clients = []
    try:
        for _ in range(100):
            # Each client keeps its TCP connection open: only the server can end it.
            client = Client.connect(f"ws://127.0.0.1:{server.port}/ws/chat")
            clients.append(client)
            if attack == "one oversized frame":
                client.send("x" * (MAX_FRAME_BYTES + 1))
            else:
                send_in_fragments(client, 640 * 1024, 64 * 1024)
            assert closed_by_server(client) == 1009  # message too big
        after = wait_for_baseline(server, baseline)
    finally:
        for client in clients:
            client.sock.close()
    assert after[0] <= baseline[0] + THREAD_SLACK, f"threads {baseline[0]} → {after[0]}"
    assert after[1] <= baseline[1], f"file descriptors {baseline[1]} → {after[1]}"
    assert server.health()["status"] == "ok"


def export_document(*memories: dict) -> dict:
    return {"format": "lumara-export", "version": 1, "memories": list(memories)}


def version(number: int, **fields) -> dict:
    return {"version": number, "content": f"My note, version {number}.",
            "replaced_at": "2026-01-02T03:04:05Z", **fields}


@pytest.mark.parametrize("memory", [
    {"content": "My note.", "created_at": "0001-01-01T00:00:00+14:00"},
    {"content": "My note.", "updated_at": "9999-12-31T23:59:59-14:00"},
    {"content": "My note.", "versions": [version(1, replaced_at="0001-01-01T00:00:00+14:00")]},
    {"content": "My note.", "versions": [version(2**63)]},
    {"content": "My note.", "versions": [version(2**63 - 1)]},
    {"content": "My note.", "versions": [version(n) for n in range(1, 20_001)]},
    {"content": "\u200b\u200b\u200b"},
], ids=["year 0", "year 10000", "version time", "version 2^63", "version 2^63-1",
        "20,000 versions", "zero-width spaces"])
def test_a_hostile_import_is_refused_and_changes_nothing(server, memory):
    before = server.request("/api/memories?limit=1")[1]["total"]
    status, body = server.request("/api/import", export_document(memory))
    assert status == 400, body
    assert "Nothing was imported" in body["error"]["message"]
    assert server.request("/api/memories?limit=1")[1]["total"] == before


def test_no_other_local_user_can_read_the_data_folder(server):
    server.request("/api/memories", {"content": "My bank PIN hint is the year we met."})
    items = [server.data_dir, *server.data_dir.rglob("*")]
    open_to_others = [f"{item.relative_to(server.data_dir)} {oct(item.lstat().st_mode)}"
                      for item in items
                      if not item.is_symlink() and item.lstat().st_mode & 0o077]
    assert open_to_others == []
    assert {"lumara.db", "lumara.db-wal"} <= {item.name for item in items}


def raw_exchange(server: AppProcess, head: bytes, body_chunks: list[bytes] = ()) -> bytes:
    """Send `head` (and the chunks) on a fresh socket, then read until the server closes it;
    the socket stays open from this side, so only the server can end the exchange."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=SETTLE_SECONDS) as sock:
        sock.sendall(head)
        for chunk in body_chunks:
            try:
                sock.sendall(chunk)
            except OSError:  # the server answered and closed before reading it all
                break
        received = b""
        try:
            while data := sock.recv(65536):
                received += data
        except ConnectionResetError:  # closed with our unread bytes in its buffer
            pass
        except TimeoutError:
            raise AssertionError(f"the server kept the connection open after:\n"
                                 f"{received[:300]!r}") from None
    return received


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@pytest.mark.parametrize("head", [
    b"GET /api/memories HTTP/1.0\r\n\r\n",
    b"GET http://127.0.0.1/api/memories HTTP/1.1\r\nHost: evil.example\r\n\r\n",
    b"GET http://localhost/api/memories HTTP/1.1\r\nHost: evil.example\r\n"
    b"Connection: close\r\n\r\n",
], ids=["no Host", "absolute form, foreign Host", "absolute localhost, foreign Host"])
def test_a_request_without_an_own_host_header_is_refused(server, head):
    assert status_of(raw_exchange(server, head)) in (400, 421)


def test_a_chunked_body_over_the_limit_is_refused_and_the_connection_closed(server):
    before = server.request("/api/memories?limit=1")[1]["total"]
    head = (b"POST /api/memories HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    piece = b'{"content": "' + b"x" * 65_000
    chunks = [b"%x\r\n%s\r\n" % (len(piece), piece)] * 40  # 2.6 MB, never terminated
    response = raw_exchange(server, head, chunks)
    assert status_of(response) == 413, response[:300]
    assert server.request("/api/memories?limit=1")[1]["total"] == before
