"""A few minutes of everything at once on a real server process with the real models:
imports, bursts of concurrent searches, chats and oversized websocket frames, round after
round. What the first round warms up (the models' working memory, caches, SQLite's reused
file descriptors) may stay; what a round leaves behind must not grow with every round."""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from simple_websocket import Client, ConnectionClosed

from lumara_web.web.chat_socket import MAX_FRAME_BYTES

from .live_server import WAIT_TIMEOUT, AppProcess, chat, report

pytestmark = pytest.mark.live_server

ROUNDS = 3
IMPORTED_PER_ROUND = 2_000
SEARCHES_PER_ROUND, SEARCH_CLIENTS = 200, 50
CHATS_PER_ROUND, CHAT_CLIENTS = 6, 3
OVERSIZED_FRAMES_PER_ROUND = 30
THREAD_SLACK = 4  # threads the server starts on its own (timers, a lingering worker)
SETTLE_SECONDS = 10
# WordNet's 12 files (opened at first use), and the import's, the index saver's and the
# backups' own connections.
FILE_SLACK = 25

PEOPLE = ["Ana", "Bruno", "Chen", "Dara", "Eli", "Femi", "Goro", "Hana"]
DOINGS = ["plays the cello", "moved to Porto", "bakes sourdough", "runs marathons",
          "keeps bees", "collects old maps"]


def import_round(server: AppProcess, round_number: int) -> None:
    rng = random.Random(round_number)
    memories = [{"content": f"My friend {rng.choice(PEOPLE)} {rng.choice(DOINGS)} since "
                            f"{1990 + index % 30} (note {round_number}.{index})."}
                for index in range(IMPORTED_PER_ROUND)]
    status, started = server.request("/api/import", {"format": "lumara-export", "version": 1,
                                                     "memories": memories})
    assert status == 202, started
    deadline = time.monotonic() + WAIT_TIMEOUT
    while (state := server.request("/api/import")[1])["state"] == "running":
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    assert state["state"] == "done", state


def search_burst(server: AppProcess, round_number: int) -> None:
    def one(index: int) -> int:
        person = PEOPLE[index % len(PEOPLE)]
        return server.request(f"/api/memories/search?q=what+does+{person}+do+{round_number}")[0]

    with ThreadPoolExecutor(SEARCH_CLIENTS) as pool:
        assert set(pool.map(one, range(SEARCHES_PER_ROUND))) == {200}


def chat_round(server: AppProcess) -> None:
    def one(index: int) -> str:
        events = chat(server.base, f"What does {PEOPLE[index % len(PEOPLE)]} do?")
        return next(event["status"] for _, event in events if event["type"] == "done")

    with ThreadPoolExecutor(CHAT_CLIENTS) as pool:
        assert set(pool.map(one, range(CHATS_PER_ROUND))) == {"complete"}


def oversized_frames(server: AppProcess) -> None:
    for _ in range(OVERSIZED_FRAMES_PER_ROUND):
        client = Client.connect(f"ws://127.0.0.1:{server.port}/ws/chat")
        client.send("x" * (MAX_FRAME_BYTES + 1))
        try:
            while client.receive(timeout=WAIT_TIMEOUT) is not None:
                pass
        except ConnectionClosed:
            pass
        assert client.close_reason == 1009


def settled_threads(server: AppProcess, baseline: int) -> int:
    deadline = time.monotonic() + SETTLE_SECONDS
    while (threads := server.threads_and_files()[0]) > baseline + THREAD_SLACK \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    return threads


def test_rounds_of_heavy_use_leave_memory_threads_and_files_where_the_first_left_them(
        tmp_path, embedding_cache_dir, capsys):
    server = AppProcess(tmp_path / "lumara", models_dir=embedding_cache_dir)
    try:
        server.wait_until("ok")
        server.wait_idle()
        threads_at_start, files_at_start = server.threads_and_files()
        rss = [server.rss_mb()]
        files = []
        for round_number in range(ROUNDS):
            import_round(server, round_number)
            search_burst(server, round_number)
            chat_round(server)
            oversized_frames(server)
            threads = settled_threads(server, threads_at_start)
            assert threads <= threads_at_start + THREAD_SLACK, \
                f"round {round_number + 1}: threads {threads_at_start} → {threads}"
            rss.append(server.rss_mb())
            files.append(server.threads_and_files()[1])
        assert server.health()["status"] == "ok"
    finally:
        server.stop()
    growth = [after - before for before, after in zip(rss, rss[1:])]
    report(capsys, "soak: RSS " + " → ".join(f"{value:.0f}" for value in rss)
           + f" MB; open files after each round {files}; " + json.dumps(
               {"threads_at_start": threads_at_start, "files_at_start": files_at_start}))
    # The first round warms up; a leak would add about as much in every later round.
    assert growth[-1] <= 0.25 * growth[0], f"RSS per round (MB): {growth}"
    # In WAL mode every open connection holds a lock on the database file, and SQLite keeps a
    # closed connection's descriptor for reuse while any lock is held: as many as the most
    # connections ever open at once (one per concurrent request), reused by every later
    # burst. So descriptors are bounded by the concurrency, and a leak would pass the bound.
    most_at_once = SEARCH_CLIENTS + CHAT_CLIENTS + FILE_SLACK
    assert max(files) <= files_at_start + most_at_once, \
        f"open files at start {files_at_start}, after each round {files}"
