"""Staying up under load, on the real server and models: 20 chats at once while the REST API
is in use, three rounds after a warm-up (every chat answered, first come first served, REST
never failing, memory not growing); then a small queue overflowing (the extra chats are told
to retry, the rest answered, the server fine afterwards)."""

from __future__ import annotations

import statistics
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

import pytest

from .live_server import CHAT_TIMEOUT, AppProcess, chat, report, request

pytestmark = pytest.mark.live_server

CHATS = 20
ROUNDS = 3  # measured, after one warm-up round
# Seconds between two chats' messages (every connection is open before the first is sent).
# Answers take longer than this — even a short one, or one the loop guard cuts after a
# dozen tokens, takes ~0.1 s — so the queue builds up to most of the 20; and most chats are
# accepted (their question embedded, their job queued, ~10 ms) before the next ones are
# sent, which gives the FIFO check many pairs whose order the server could observe.
STAGGER_SECONDS = 0.05
# Enough waiting places for every chat of a round (19 wait while one is answered); the
# default, 16, would turn the last ones away, which is the second test's subject.
LOAD_MAX_QUEUE = 24
# Answers of at most 32 tokens (default 200): the subject is queueing, not long answers,
# and a round then takes ~15 s on two cores instead of ~40 s.
ANSWER_TOKENS = 32
# RSS may grow this much from the end of round 1 to the end of round 3. After the warm-up
# round every cache is at its steady size — llama.cpp's saved prompt states are capped at
# 32 MB (prompt_cache_mb) and fill up within 20 conversations, the embedding memo holds
# the few dozen texts these rounds repeat — so what grows is the data the REST thread adds
# (~150 memories a round, a few KB each in the vector index and memo) and allocator noise
# from 20 connection threads. 10 % of ~350 MB is 35 MB: ten times that, and far below what
# a leak of even 1 MB per chat (40 chats between the two readings) would add on top.
RSS_GROWTH_LIMIT = 0.10
REST_PAUSE_SECONDS = 0.2  # after each list, search and add
# A hang detector for the last of 20 queued chats: inference runs at a lower CPU priority,
# so beside another busy process (a CPU burner, as the suite is also run) the 20 answers
# took over five minutes.
QUEUED_CHAT_TIMEOUT = 4 * CHAT_TIMEOUT
QUESTIONS = [
    "Why is the sky blue?", "How do plants make their food?", "Why do cats purr?",
    "How does a refrigerator keep food cold?", "What causes the seasons?",
    "How do bees make honey?", "Why does bread rise?", "How does a rainbow form?",
    "What makes thunder so loud?", "Why do leaves change colour in autumn?",
]


@dataclass
class Chat:
    """One chat's events, as received: times are time.monotonic()."""

    events: list[tuple[float, dict]]

    def of(self, kind: str) -> list[tuple[float, dict]]:
        return [(at, event) for at, event in self.events if event["type"] == kind]

    @property
    def sent_at(self) -> float:
        return self.events[0][0]

    @property
    def accepted_at(self) -> float:
        """When the server had surely queued its job: its first 'queued' or 'memories'
        event (both follow the submission)."""
        return min(at for at, event in self.events if event["type"] in ("queued", "memories"))

    @property
    def answer_started_at(self) -> float:
        tokens = self.of("token")
        return tokens[0][0] if tokens else self.of("done")[0][0]

    @property
    def answer_done_at(self) -> float:
        return self.of("done")[0][0]

    @property
    def positions(self) -> list[int]:
        return [event["position"] for _, event in self.of("queued")]

    @property
    def outcome(self) -> str:
        kinds = [event["type"] for _, event in self.events]
        done = self.of("done")
        if done and done[0][1]["status"] == "complete" and kinds[-1] == "turn_end":
            return "complete"
        errors = self.of("error")
        return f"error:{errors[0][1]['code']}" if errors else f"unexpected:{kinds}"


@dataclass
class RestTraffic:
    """A user's REST requests in a loop while the chats run: list, search, add."""

    base: str
    stop: threading.Event = field(default_factory=threading.Event)
    latencies_ms: dict[str, list[float]] = field(
        default_factory=lambda: {"list": [], "search": [], "add": []})
    failures: list[str] = field(default_factory=list)
    added: int = 0

    def run(self) -> None:
        search = urllib.parse.urlencode({"q": "where is the blue folder", "k": 10})
        while not self.stop.is_set():
            self.added += 1
            for kind, path, body in (
                    ("list", "/api/memories?limit=20", None),
                    ("search", f"/api/memories/search?{search}", None),
                    ("add", "/api/memories",
                     {"content": f"Load note {self.added}: the blue folder is in drawer "
                                 f"{self.added % 7}.", "tags": ["load"]})):
                started = time.perf_counter()
                try:
                    code, answer = request(self.base, path, body)
                except OSError as error:
                    code, answer = None, repr(error)
                self.latencies_ms[kind].append((time.perf_counter() - started) * 1000)
                if code not in (200, 201):
                    self.failures.append(f"{kind}: {code} {answer}")
            # Paced like a busy person (~12 requests a second), not a benchmark: faster, each
            # add's embedding would take the inference thread from the answers and stretch
            # the rounds on a shared machine.
            self.stop.wait(REST_PAUSE_SECONDS)


def run_chats(base: str, count: int, stagger: float, question: str | None = None) -> list[Chat]:
    """`count` chats on their own connections, all open before the first message is sent,
    the messages `stagger` seconds apart."""
    results: list[Chat | BaseException | None] = [None] * count
    first_send = time.monotonic() + 1.0  # time for every connection to open

    def one(index: int) -> None:
        try:
            results[index] = Chat(chat(base, question or QUESTIONS[index % len(QUESTIONS)],
                                       send_at=first_send + index * stagger,
                                       timeout=QUEUED_CHAT_TIMEOUT))
        except BaseException as error:  # reported by the test, not lost in a thread
            results[index] = error

    threads = [threading.Thread(target=one, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = [result for result in results if not isinstance(result, Chat)]
    assert not failed, failed
    return results  # type: ignore[return-value]


def check_fifo(chats: list[Chat]) -> int:
    """Answers are generated one at a time, so starting before another means finishing
    before it starts. Where the order of two chats was plain to the server — A's job was
    queued before B's message was even sent — A's answer must start before B's ends.
    Returns the number of such pairs."""
    pairs = 0
    for first in chats:
        for later in chats:
            if first is later or not first.accepted_at < later.sent_at:
                continue
            pairs += 1
            assert first.answer_started_at < later.answer_done_at, (
                f"a chat queued at {first.accepted_at:.2f} started answering at "
                f"{first.answer_started_at:.2f}, after one sent at {later.sent_at:.2f} "
                f"had finished at {later.answer_done_at:.2f}")
    return pairs


def percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


def test_twenty_chats_at_once_with_rest_traffic_all_answered_in_order(
        tmp_path, embedding_cache_dir, capsys):
    data_dir = tmp_path / "lumara"
    with AppProcess(data_dir, "--max-queue", str(LOAD_MAX_QUEUE), "--answer-max-tokens",
                    str(ANSWER_TOKENS), models_dir=embedding_cache_dir) as server:
        server.wait_until("ok")
        server.wait_idle()
        rss_mb, pairs, waited = [], 0, 0
        rest_ms: dict[str, list[float]] = {"list": [], "search": [], "add": []}
        for round_number in range(ROUNDS + 1):  # round 0 warms up
            rest = RestTraffic(server.base)
            rest_thread = threading.Thread(target=rest.run)
            rest_thread.start()
            try:
                chats = run_chats(server.base, CHATS, STAGGER_SECONDS)
            finally:
                rest.stop.set()
                rest_thread.join(60)

            assert [chat.outcome for chat in chats] == ["complete"] * CHATS
            for chat_ in chats:
                positions = chat_.positions
                assert all(position >= 2 for position in positions), positions  # model ready
                assert positions == sorted(positions, reverse=True), positions
            queued = [chat_ for chat_ in chats if chat_.positions]
            assert len(queued) >= CHATS // 2, "20 chats on one model: most must wait"
            pairs += check_fifo(chats)
            waited += len(queued)
            assert not rest.failures, rest.failures[:5]

            server.wait_idle()
            if round_number:
                rss_mb.append(server.rss_mb())
                for kind, latencies in rest.latencies_ms.items():
                    rest_ms[kind].extend(latencies)
        assert server.wait_until("ok")["database"]["problems"] == []

    growth = rss_mb[-1] / rss_mb[0] - 1
    every = [ms for latencies in rest_ms.values() for ms in latencies]
    report(capsys, f"load: {ROUNDS + 1} rounds (1 warm-up) of {CHATS} concurrent chats, all "
                   f"complete; {waited} chats waited (queued events, positions only falling); "
                   f"FIFO held for {pairs} observable pairs")
    report(capsys, f"load: REST while chatting (rounds 1-{ROUNDS}), {len(every)} requests, "
                   f"none failed: p95 {percentile(every, 0.95):.0f} ms (" + ", ".join(
                       f"{kind} {percentile(latencies, 0.95):.0f}"
                       for kind, latencies in rest_ms.items()) + " ms)")
    report(capsys, f"load: RSS after rounds 1-{ROUNDS}: "
                   f"{', '.join(f'{mb:.0f}' for mb in rss_mb)} MB ({growth:+.1%}; limit "
                   f"{RSS_GROWTH_LIMIT:.0%})")
    assert pairs >= CHATS, "the FIFO check compared too few chats to mean anything"
    assert growth < RSS_GROWTH_LIMIT, rss_mb


def test_a_full_queue_turns_chats_away_with_busy_and_answers_the_rest(
        tmp_path, embedding_cache_dir, capsys):
    max_queue, sent = 4, 12
    with AppProcess(tmp_path / "lumara", "--max-queue", str(max_queue), "--answer-max-tokens",
                    str(ANSWER_TOKENS), models_dir=embedding_cache_dir) as server:
        server.wait_until("ok")
        server.wait_idle()  # the warm-up answers would take queue places
        # One connection each: a connection runs its messages one at a time (ChatSession),
        # so only separate connections put more than one job in the model's queue. The same
        # question: after the first, its embedding is remembered, so all 12 reach the queue
        # within milliseconds, while the first answer is still being written.
        chats = run_chats(server.base, sent, 0.0, question=QUESTIONS[0])

        outcomes = [chat_.outcome for chat_ in chats]
        busy = [chat_ for chat_ in chats if chat_.outcome == "error:busy"]
        assert outcomes.count("complete") + len(busy) == sent, outcomes
        # `max_queue` places, and one more once the worker has taken the first job out of
        # the queue to answer it: under load that lower-priority thread may only get to it
        # after all twelve have arrived. Each later one found the queue full unless an
        # answer had finished meanwhile.
        assert 1 <= len(busy) <= sent - max_queue, outcomes
        for chat_ in busy:
            [(_, error)] = chat_.of("error")
            assert error["message"] == (f"The chat model is busy ({max_queue} requests "
                                        "waiting); try again in a moment.")
            assert [event["type"] for _, event in chat_.events[-2:]] == ["error", "turn_end"]
        for chat_ in chats:
            assert max(chat_.positions, default=0) <= max_queue + 1

        health = server.wait_idle()
        assert health["status"] == "ok"
        assert chat(server.base, QUESTIONS[1])[-2][1]["status"] == "complete"  # still serving
    report(capsys, f"queue limit: --max-queue {max_queue}, {sent} chats at once: "
                   f"{sent - len(busy)} answered, {len(busy)} told 'busy'; healthy after")
