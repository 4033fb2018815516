"""What more than one test module uses: waiting on events, an engine the test paces, the app
started on the fakes, JSON and database checks, the app on a live loopback server with
websocket clients, a list-backed chat socket. Test modules import from here, never from each
other. The fakes are in tests/fakes.py; `python app.py` in a child process is
tests/live_server.py."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import os
import socket
import struct
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from simple_websocket import Client, ConnectionClosed
from werkzeug.serving import make_server

from lumara_web import create_app
from lumara_web.inference.engine import Engine, GenerationRequest
from lumara_web.storage import db, store

from .fakes import FakeEmbedder, FakeEngine

WAIT = 10  # seconds: generous bounds on waits that normally end in milliseconds


# -- waiting ----------------------------------------------------------------------------
def wait_until(predicate, timeout: float = WAIT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def engine_idle(engine: Engine) -> bool:
    queue = engine.status()["queue"]
    return queue["waiting"] == 0 and not queue["running"]


def wait_idle(engine: Engine, timeout: float = WAIT) -> None:
    assert engine.wait_idle(timeout), "timed out waiting for the engine to be idle"


def started(job, timeout: float = WAIT) -> None:
    assert job.started.wait(timeout), "the job never started"


def import_document(client, document: dict) -> dict:
    """POST /api/import through a Flask test client, wait for the background job's thread to
    end, and return the import's result (its status must say done)."""
    response = client.post("/api/import", json=document)
    assert response.status_code == 202, response.get_json()
    job = client.application.extensions["lumara"].import_job
    # A hang detector: test_transfer's 400 near-duplicates take ~20 s on two busy cores.
    job.thread.join(WAIT * 12)
    assert not job.thread.is_alive(), "the import did not finish"
    status = client.get(response.headers["Location"]).get_json()
    assert status["state"] == "done", status
    return status["result"]


# -- the engine -------------------------------------------------------------------------
class GatedEngine(FakeEngine):
    """FakeEngine whose gated generations wait for a permit before each token: `allow(n)`
    lets n more tokens through, `open()` lets everything through. A test decides exactly
    how far a generation has got while the worker is really busy with it. A stopped job
    stops waiting (its next token is then dropped by the worker). While it waits, it runs
    the engine's pending tasks, as the real engine does between two decoding steps."""

    def __init__(self, gated=("chat",), **kwargs):
        super().__init__(**kwargs)
        self.gated = set(gated)
        self._permits = threading.Semaphore(0)
        self._open = threading.Event()

    def allow(self, tokens: int = 1) -> None:
        self._permits.release(tokens)

    def open(self) -> None:
        self._open.set()

    def _generate(self, model, job):
        for piece in super()._generate(model, job):
            if job.request.purpose in self.gated:
                while not (self._open.is_set() or self._permits.acquire(timeout=0.01)):
                    self._run_tasks()
                    if job.stop.is_set():
                        break
            yield piece


def request(text: str = "hello", purpose: str = "chat", max_tokens: int = 50):
    """A GenerationRequest of one user message."""
    return GenerationRequest([{"role": "user", "content": text}], max_tokens=max_tokens,
                             purpose=purpose)


# -- the app ----------------------------------------------------------------------------
def build_app(data_dir: str | Path, idle_timeout: float = WAIT, **settings: Any) -> Flask:
    """The app on `data_dir` with FakeEmbedder and FakeEngine unless `settings` name others
    (embedder=None or engine=None: the real ones), returned once its engine is idle: the
    start-up warm-up is done, so whatever the engine sees next is the test's own. (The
    `make_app` fixture calls this with a fresh folder; module-scoped fixtures call it.)"""
    config = {"data_dir": str(data_dir), **settings}
    if "embedder" not in config:
        config["embedder"] = FakeEmbedder()
    if "engine" not in config:
        config["engine"] = FakeEngine()
    app = create_app(config)
    wait_idle(app.extensions["lumara"].engine, idle_timeout)
    return app


def connect(app: Flask):
    """A connection to the app's database (the caller closes it)."""
    return db.connect(app.extensions["lumara"].settings["db_path"])


# -- the memories API -------------------------------------------------------------------
# FakeEmbedder is a bag of words: two texts with n distinct words sharing m have a cosine of
# about m/n. 10 distinct words; the variant shares 8 of them (cosine ≈ 0.8: a contradiction
# candidate); the unrelated text shares none.
FACT = "lighthouse keeper paints railing blue every spring morning before breakfast"
FACT_VARIANT = "lighthouse keeper paints railing blue every spring morning after dinner"
UNRELATED = "quantum chromodynamics describes gluons binding quarks inside protons"


def add(client, content, **fields):
    response = client.post("/api/memories", json={"content": content, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def search(client, **params):
    response = client.get("/api/memories/search", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def result_ids(body):
    return [hit["memory"]["id"] for hit in body["results"]]


def get_json(client, path, **kwargs):
    response = client.get(path, **kwargs)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def error_code(response) -> str:
    return response.get_json()["error"]["code"]


# -- refused requests -------------------------------------------------------------------
def assert_json_error(response, status: int | None = None, code: str | None = None) -> None:
    """The body is {"error": {"code", "message"}} and nothing else, as JSON; the status and
    the code are these when given."""
    shown = response.get_data()[:500]
    if status is not None:
        assert response.status_code == status, shown
    assert response.mimetype == "application/json", shown
    body = json.loads(response.get_data())
    assert isinstance(body, dict) and list(body) == ["error"], shown
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message"}, shown
    assert isinstance(error["code"], str) and error["code"], shown
    if code is not None:
        assert error["code"] == code, shown
    assert isinstance(error["message"], str) and error["message"].strip(), shown


API_TABLES = ("conversations", "messages", "suggestions", "contradictions", "memories",
              "memory_vectors")


def api_snapshot(app: Flask) -> dict:
    """Every row of every table the API could touch (vectors: id, type and bytes)."""
    conn = connect(app)
    try:
        rows = {table: [tuple(row) for row in conn.execute(
                    f"SELECT * FROM {table} ORDER BY 1")]
                for table in API_TABLES if table != "memory_vectors"}
        rows["memory_vectors"] = [tuple(row) for row in conn.execute(
            "SELECT memory_id, type, embedding FROM memory_vectors ORDER BY memory_id")]
    finally:
        conn.close()
    return rows


def error_check(app: Flask, embedder: FakeEmbedder,
                snapshot: Callable[[Flask], dict] = api_snapshot):
    """check(send, status, code): send() must fail so — a JSON error — changing nothing:
    `snapshot(app)` is the same after it, and the embedder was asked for nothing."""
    def check(send, status, code):
        before, calls_before = snapshot(app), len(embedder.calls)
        response = send()
        assert_json_error(response, status, code)
        assert snapshot(app) == before
        assert len(embedder.calls) == calls_before  # rejected before any embedding
        return response
    return check


# -- the database -----------------------------------------------------------------------
def snapshot(app: Flask) -> dict:
    """Every row of every table (the vector table and its shadow tables included)."""
    conn = connect(app)
    try:
        tables = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name")]
        return {table: [tuple(row) for row in conn.execute(f'SELECT * FROM "{table}"')]
                for table in tables}
    finally:
        conn.close()


def assert_database_whole(app: Flask) -> None:
    conn = connect(app)
    try:
        assert [tuple(row) for row in conn.execute("PRAGMA integrity_check")] == [("ok",)]
        assert store.integrity_problems(conn) == []
        vectors, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT memory_id) FROM memory_vectors").fetchone()
        memories = conn.execute("SELECT count(*) FROM memories").fetchone()[0]
        assert vectors == distinct == memories, "a memory without exactly one vector"
    finally:
        conn.close()


def stored_vector(conn, memory_id):
    row = conn.execute("SELECT embedding FROM memory_vectors WHERE memory_id = ?",
                       (memory_id,)).fetchone()
    return store.blob_to_vector(row[0])


def assert_every_vector_made_by(conn, embedder):
    """Each memory's stored vector is `embedder`'s vector of its content."""
    for memory_id, content in store.memory_contents(conn):
        expected = embedder.embed([content])[0]
        assert float(stored_vector(conn, memory_id) @ expected) > 0.9999


# -- a live server and websocket clients ------------------------------------------------
class LiveServer:
    """The app on a free loopback port, served by werkzeug's threaded server."""

    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.socket.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.clients: list[Client] = []

    def connect(self) -> Client:
        client = Client.connect(f"ws://127.0.0.1:{self.port}/ws/chat")
        self.clients.append(client)
        return client

    def get(self, path: str) -> tuple[int, dict]:
        with urllib.request.urlopen(self.base + path, timeout=WAIT) as response:
            return response.status, json.loads(response.read())

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(self.base + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            return response.status, json.loads(response.read())

    def stop(self) -> None:
        for client in self.clients:
            close(client)
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(WAIT)


def close(client: Client) -> None:
    try:
        client.close()
    except ConnectionClosed:  # already closed (by the server)
        pass
    client.thread.join(WAIT)


def send(client: Client, **frame) -> None:
    client.send(json.dumps(frame))


def receive(client: Client, timeout: float = WAIT) -> dict:
    raw = client.receive(timeout=timeout)
    assert raw is not None, "no event arrived in time"
    return json.loads(raw)


def receive_until(client: Client, kind: str, timeout: float = WAIT) -> list[dict]:
    """Events up to and including the first of `kind`, one frame each."""
    events = []
    while not events or events[-1]["type"] != kind:
        events.append(receive(client, timeout))
    return events


def text_of(events) -> str:
    return "".join(event["text"] for event in events if event["type"] == "token")


class RawWebSocket:
    """A websocket client that sends frames exactly as told: lengths that lie, invalid UTF-8
    in text frames, fragments, compressed frames. Frames are masked with a zero key (as
    valid as any key, and the payload goes out unchanged)."""

    def __init__(self, port: int, extensions: str | None = None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET /ws/chat HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13"]
        if extensions:
            lines.append(f"Sec-WebSocket-Extensions: {extensions}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buffer = b""
        head = self._read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        self.handshake = head.decode("latin-1").lower()

    def send_frame(self, opcode: int, payload: bytes, *, fin: bool = True,
                   rsv1: bool = False, masked: bool = True,
                   declared: int | None = None) -> None:
        """One frame; `declared` states a length other than the payload's."""
        length = len(payload) if declared is None else declared
        mask_bit = 0x80 if masked else 0
        head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
        if length < 126:
            head += bytes([mask_bit | length])
        elif length < 2**16:
            head += bytes([mask_bit | 126]) + struct.pack(">H", length)
        else:
            head += bytes([mask_bit | 127]) + struct.pack(">Q", length)
        self.sock.sendall(head + (b"\0\0\0\0" if masked else b"") + payload)

    def send_text(self, payload: bytes) -> None:
        self.send_frame(0x1, payload)

    def receive(self) -> tuple[int, bytes] | None:
        """(opcode, payload) of the next frame; None when the server closed the socket."""
        try:
            head = self._read(2)
            length = head[1] & 0x7F
            if length == 126:
                length = struct.unpack(">H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self._read(8))[0]
            return head[0] & 0x0F, self._read(length)
        except ConnectionError:
            return None

    def close_code(self) -> int | None:
        """Frames are read until the server's close; its status code (None: no close)."""
        while (frame := self.receive()) is not None:
            opcode, payload = frame
            if opcode == 0x8:
                return struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
        return None

    def event(self) -> dict:
        frame = self.receive()
        assert frame is not None and frame[0] == 0x1, frame
        return json.loads(frame[1])

    def close(self) -> None:
        self.sock.close()

    def _read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            data = self.sock.recv(max(size - len(self.buffer), 4096))
            if not data:
                raise ConnectionError("closed by the server")
            self.buffer += data
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            data = self.sock.recv(4096)
            if not data:
                raise ConnectionError(f"closed before {marker!r}: {self.buffer!r}")
            self.buffer += data
        head, self.buffer = self.buffer.split(marker, 1)
        return head


# -- a chat socket without a socket -----------------------------------------------------
class Recorder:
    """A send() that keeps every event and lets the test wait for one; `fail_on` makes it
    raise (the client went away) on the first event of that type."""

    def __init__(self, fail_on: str | None = None):
        self.events: list[dict] = []
        self.calls = 0
        self.fail_on = fail_on
        self.failed = threading.Event()
        self._condition = threading.Condition()

    def __call__(self, event: dict) -> None:
        json.dumps(event)  # every event must be sendable as JSON
        with self._condition:
            self.calls += 1
            if self.fail_on and event["type"] == self.fail_on and not self.failed.is_set():
                self.failed.set()
                raise ConnectionResetError("the client went away")
            self.events.append(event)
            self._condition.notify_all()

    def of(self, kind: str) -> list[dict]:
        with self._condition:
            return [event for event in self.events if event["type"] == kind]

    def wait_for(self, kind: str, count: int = 1, timeout: float = WAIT) -> list[dict]:
        with self._condition:
            ok = self._condition.wait_for(
                lambda: sum(event["type"] == kind for event in self.events) >= count, timeout)
            assert ok, f"no {count} {kind!r} events in {self.events}"
            return [event for event in self.events if event["type"] == kind]


def run_async(make_coroutine):
    """asyncio.run(make_coroutine()) on a thread of its own, its result (or its exception).
    The browser tests' Playwright keeps an event loop running on the main thread for the
    whole session, where asyncio.run refuses to start another."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make_coroutine())).result()
