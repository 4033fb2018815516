"""Benchmarks of the whole server as a user runs it (`python app.py` in a child process):
start-up times, resident memory, and API latency while chats stream.

These have no raw-library twin; each is reported as measured, and the API figure is set
beside the same requests on the idle server (measured in the same run) as its anchor."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from lumara_web.observability.perf import process_rss_mb
from lumara_web.storage import db, migrations, store

from . import PROJECT_ROOT

# Questions the model answers at length (not about the user, so no memory lookup decides
# them): they keep the engine busy while the API is timed.
GENERAL_QUESTIONS = [
    "Explain how a bicycle gear works.", "Why is the sky blue?",
    "Give me three tips for sleeping better.", "How does a refrigerator keep food cold?",
    "What should I pack for a weekend hike?", "How do plants make their food?",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`python app.py` on a data dir and a free loopback port."""

    def __init__(self, data_dir: Path, extra_args: tuple[str, ...] = ()):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "app.py", "--data-dir", str(data_dir), "--port", str(self.port),
             *extra_args], cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)

    def get(self, path: str, timeout: float = 30) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=timeout) as response:
            return json.loads(response.read())

    def wait(self, ready: bool, timeout: float = 180) -> float:
        """Seconds from spawning until /health answers (ready=False) or says both models
        are ready (ready=True)."""
        return self.wait_until(lambda health: not ready or health["status"] == "ok", timeout)

    def wait_until(self, done: Any, timeout: float = 180) -> float:
        """Seconds from spawning until `done(/health's answer)` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}")
            try:
                health = self.get("/health", timeout=5)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.01)
                continue
            if done(health):
                return time.perf_counter() - self.started
            if health["status"] == "error":
                raise RuntimeError(f"the server reported an error: {health}")
            time.sleep(0.01)
        raise TimeoutError("the server did not become ready")

    def rss_mb(self) -> float:
        rss = process_rss_mb(self.process.pid)
        if rss is None:
            raise RuntimeError(f"no resident memory figure for process {self.process.pid}")
        return rss

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)


def measure_startup(workdir: Path, restarts: int) -> dict:
    """First setup on an empty data dir, then `restarts` later starts on the same dir."""
    data_dir = workdir / "startup"
    first = ServerProcess(data_dir)
    try:
        first_http = first.wait(ready=False)
        first_ready = first.wait(ready=True)
    finally:
        first.stop()
    http, ready = [], []
    for _ in range(restarts):
        server = ServerProcess(data_dir)
        try:
            http.append(server.wait(ready=False) * 1000)
            ready.append(server.wait(ready=True) * 1000)
        finally:
            server.stop()
    return {"first_setup_http_ms": first_http * 1000, "first_setup_ms": first_ready * 1000,
            "start_http_ms": http, "start_ready_ms": ready}


def fill_memories(data_dir: Path, count: int, seed: int = 7) -> None:
    """`count` memories with seeded unit vectors, written straight through the store (no
    model needed: the server only reads them)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    conn = db.connect(data_dir / "lumara.db")
    migrations.migrate(conn)
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with db.transaction(conn):
        for index, vector in enumerate(vectors):
            store.insert_memory(conn, content=f"Synthetic memory number {index}.",
                                type="knowledge", tags=["bench"], embedding=vector)
    conn.close()


def chat_once(base: str, question: str) -> list[dict]:
    """One question over /ws/chat; every event until turn_end."""
    from simple_websocket import Client

    client = Client.connect(base.replace("http://", "ws://") + "/ws/chat")
    try:
        client.send(json.dumps({"type": "chat", "content": question}))
        events = []
        while True:
            event = json.loads(client.receive(timeout=120))
            events.append(event)
            if event["type"] in ("turn_end", "error"):
                return events
    finally:
        client.close()


def api_latencies(base: str, rounds: int, *, seconds: float = 0.0,
                  pause: float = 0.0) -> list[float]:
    """Milliseconds of a mix the UI sends (list, semantic search, one memory, the
    conversations): at least `rounds` requests and for at least `seconds`, `pause` apart."""
    query = urllib.parse.quote("what did my sister recommend")
    paths = ["/api/memories?limit=20", f"/api/memories/search?q={query}&k=10",
             "/api/memories/1", "/api/conversations"]
    samples: list[float] = []
    until = time.monotonic() + seconds
    while len(samples) < rounds or time.monotonic() < until:
        started = time.perf_counter()
        with urllib.request.urlopen(base + paths[len(samples) % len(paths)],
                                    timeout=60) as response:
            response.read()
        samples.append((time.perf_counter() - started) * 1000)
        time.sleep(pause)
    return samples


def measure_loaded_server(workdir: Path, memories: int, streams: int, rounds: int,
                          seconds: float) -> dict:
    """RSS with both models loaded, `memories` memories and a chat answered; then API
    latency idle and while `streams` chats stream answers."""
    data_dir = workdir / "loaded"
    fill_memories(data_dir, memories)
    server = ServerProcess(data_dir)
    try:
        server.wait(ready=True)
        answered = chat_once(server.base, GENERAL_QUESTIONS[0])
        tokens = sum(event["type"] == "token" for event in answered)
        api_latencies(server.base, 20)  # warm: first search embeds its query
        idle = api_latencies(server.base, rounds)
        rss_after_chat = server.rss_mb()

        busy_until = threading.Event()
        answers = []

        def keep_chatting(offset: int) -> None:
            turn = 0
            while not busy_until.is_set():
                events = chat_once(server.base,
                                   GENERAL_QUESTIONS[(offset + turn) % len(GENERAL_QUESTIONS)])
                answers.append(events[-1]["type"])
                turn += 1

        chatters = [threading.Thread(target=keep_chatting, args=(index,), daemon=True)
                    for index in range(streams)]
        for thread in chatters:
            thread.start()
        time.sleep(1.0)  # let the streams begin
        # Paced like a person using the page, for long enough to span many answers.
        busy = api_latencies(server.base, rounds, seconds=seconds, pause=0.02)
        busy_until.set()
        for thread in chatters:
            thread.join(180)
        rss_after_load = server.rss_mb()
    finally:
        server.stop()
    return {"memories": memories, "first_answer_tokens": tokens,
            "rss_mb": rss_after_chat, "rss_after_load_mb": rss_after_load,
            "api_idle_ms": idle, "api_busy_ms": busy, "streams": streams,
            "answers_during_load": len(answers),
            "answers_failed": sum(kind == "error" for kind in answers),
            "pid_cores": os.cpu_count()}


def measure_large_collection(data_dir: Path, searches: int, questions: list[str],
                             models_dir: Path | None = None) -> dict:
    """A later start of the server on a data folder holding a large collection whose vector
    index was saved (lumara_bench/search.py builds it): seconds until HTTP answers, until
    the index is loaded (searches at full speed), until both models are ready; then the
    resident memory after a chat and `searches` searches through the API. `models_dir`:
    an ONNX export to share as <data_dir>/models (else the server exports its own)."""
    if models_dir is not None and not (data_dir / "models").exists():
        (data_dir / "models").symlink_to(models_dir.resolve(), target_is_directory=True)
    server = ServerProcess(data_dir)
    try:
        http_s = server.wait(ready=False)
        index_s = server.wait_until(
            lambda health: health["search_index"]["state"] == "ready")
        ready_s = server.wait(ready=True)
        index = server.get("/health")["search_index"]
        chat_once(server.base, GENERAL_QUESTIONS[0])
        search_ms = []
        for question in questions[:searches]:  # distinct: each query is embedded
            started = time.perf_counter()
            server.get("/api/memories/search?k=10&q=" + urllib.parse.quote(question))
            search_ms.append((time.perf_counter() - started) * 1000)
        rss = server.rss_mb()
    finally:
        server.stop()
    return {"http_ms": http_s * 1000, "index_ready_ms": index_s * 1000,
            "models_ready_ms": ready_s * 1000, "index": index, "rss_mb": rss,
            "api_search_ms": search_ms}
