"""`python -m lumara_bench`: measure Lumara's hot paths beside the raw libraries.

Every Lumara figure is printed next to the same operation done by raw sentence-transformers
or a raw sqlite-vec query in the same run, with the ratio, so overhead is visible and the
machine's speed cancels out. Results go to stdout and docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lumara_web.chat import prompts
from lumara_web.chat.service import TurnRequest
from lumara_web.config import load_settings
from lumara_web.errors import LumaraError
from lumara_web.inference.bundled import EMBEDDING_MODEL_ID, embedding_model_path
from lumara_web.inference.embeddings import (
    Embedder,
    EmbeddingService,
    PersistentEmbeddingCache,
    import_sentence_transformers,
)
from lumara_web.inference.engine import (
    Engine,
    LlamaEngine,
    llama_options,
    without_extra_buffer_types,
)
from lumara_web.inference.onnx_embedder import load_embedder
from lumara_web.memory import validation
from lumara_web.observability import metrics_report
from lumara_web.observability.targets import TARGETS, Target
from lumara_web.storage import db, migrations
from lumara_web.version import __version__

from . import PROJECT_ROOT, evaluation
from .importing import STORED as STORED_BEFORE_IMPORT
from .importing import bench_import
from .search import FULL_SIZES, QUICK_SIZES, bench_search_scale
from .server import measure_loaded_server, measure_startup

DOCS_MD = PROJECT_ROOT / "docs" / "BENCHMARKS.md"
# The figures of the default run ship with the product (/metrics shows them); a run with its
# own --output writes them beside that file instead.
RECORDED_FIGURES = metrics_report.BENCHMARKS_PATH

SUBJECTS = ["my sister", "the dentist", "our landlord", "my manager", "the car", "grandma",
            "the cabin", "my running club", "the bakery", "my passport", "the garden",
            "our neighbour", "the bank", "my cousin", "the library", "the vet"]
ACTIONS = ["moved to", "prefers", "reminded me about", "cancelled", "booked", "recommended",
           "complained about", "paid for", "forgot", "asked about", "changed", "fixed"]
OBJECTS = ["the appointment on Tuesday", "a flat near the river", "written updates on Fridays",
           "the blue notebook", "an oil change every 15,000 km", "the spare key", "cold brew",
           "the lease renewal in September", "a vegetarian recipe", "the train to Porto",
           "a new phone plan", "the tax forms", "the concert tickets", "the wifi password"]


def sentences(count: int, seed: int) -> list[str]:
    """Distinct, plausible memory-like sentences (distinct so nothing is a cache hit)."""
    rng = np.random.default_rng(seed)
    return [f"{SUBJECTS[rng.integers(len(SUBJECTS))].capitalize()} "
            f"{ACTIONS[rng.integers(len(ACTIONS))]} {OBJECTS[rng.integers(len(OBJECTS))]} "
            f"(note {seed}-{index})." for index in range(count)]


@dataclass
class Row:
    """One benchmark figure. `ours`/`raw` are per-sample milliseconds (or tokens/s when the
    unit is "tok/s"); `raw` is the same work done by the bare library in the same run."""

    key: str  # a targets.TARGETS key where the row measures a target; stable across runs
    operation: str
    ours: list[float]
    raw: list[float] | None
    aim: str
    unit: str = "ms"
    gate: bool = True  # compared with the recorded ratio by --check (see check_regressions)
    recall: float | None = None
    note: str = ""
    raw_name: str = ""  # what the raw anchor is, for benchmarks.json

    @staticmethod
    def p(samples: list[float], q: float) -> float:
        return float(np.percentile(samples, q))

    def show(self, value: float) -> str:
        if self.unit == "tok/s":
            return f"{value:.1f} tok/s"
        if self.is_rate:
            return f"{value:,.0f} {self.unit}"
        if self.unit == "MB":
            return f"{value:,.0f} MB"
        return fmt(value)

    @property
    def p50(self) -> float:
        return self.p(self.ours, 50)

    @property
    def tail(self) -> float:
        # For a rate, the slow tail is the 5th percentile.
        return self.p(self.ours, 5 if self.is_rate else 95)

    @property
    def ratio(self) -> float | None:
        """Cost relative to raw: above 1 means Lumara is slower (for a rate, raw / ours)."""
        if not self.raw:
            return None
        raw50 = self.p(self.raw, 50)
        return raw50 / self.p50 if self.is_rate else self.p50 / raw50

    @property
    def is_rate(self) -> bool:
        return self.unit.endswith("/s")

    def cells(self) -> list[str]:
        ratio = self.ratio
        if ratio is None:
            shown, raw = "—", "—"
        else:
            raw = self.show(self.p(self.raw, 50))
            shown = f"{ratio:.2f}×" if ratio >= 0.1 else f"{1 / ratio:,.0f}× faster"
        figure = self.show(self.p50) if self.recall is None else \
            f"{self.show(self.p50)} (recall@10 {self.recall:.3f})"
        return [self.operation, figure, self.show(self.tail), raw, shown, self.aim]

    def to_dict(self) -> dict:
        # ours_p95 is the slow tail: the 5th percentile for a rate.
        return {"key": self.key, "label": self.operation, "unit": self.unit,
                "ours_p50": self.p50, "ours_p95": self.tail,
                "raw_p50": self.p(self.raw, 50) if self.raw else None, "raw": self.raw_name,
                "ratio": self.ratio, "gate": self.gate, "recall": self.recall,
                "samples": len(self.ours), "aim": self.aim, "note": self.note}


def fmt(ms: float) -> str:
    if ms < 0.1:
        return f"{ms * 1000:.2f} µs"
    return f"{ms:.2f} ms" if ms < 100 else f"{ms:,.0f} ms"


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def interleaved(ours: Callable[[int], object], raw: Callable[[int], object],
                repeats: int) -> tuple[list[float], list[float]]:
    """Alternate the two so drift (thermal, other load) hits both alike."""
    ours_ms, raw_ms = [], []
    for index in range(repeats):
        ours_ms.append(timed(lambda: ours(index)))
        raw_ms.append(timed(lambda: raw(index)))
    return ours_ms, raw_ms


def load_embedding_model() -> tuple[object, dict]:
    started = time.perf_counter()
    sentence_transformers = import_sentence_transformers()
    import_seconds = time.perf_counter() - started
    started = time.perf_counter()
    model = sentence_transformers.SentenceTransformer(str(embedding_model_path()), device="cpu")
    facts = {"import_seconds": import_seconds, "load_seconds": time.perf_counter() - started,
             "torch_threads": __import__("torch").get_num_threads(),
             "sentence_transformers": sentence_transformers.__version__}
    return model, facts


def load_app_embedder(workdir: Path) -> Embedder:
    """The embedder the server uses by default, loaded as create_app loads it."""
    return load_embedder(None, 64, workdir / "models")


def bench_embeddings(workdir: Path, embedder: Embedder, model: object, engine: Engine,
                     repeats: int, batch_size: int) -> list[Row]:
    """Lumara's EmbeddingService on the app's embedder beside raw sentence-transformers
    `encode`; both run on the app's inference thread (as in the server; see engine.py)."""
    db_path = workdir / "embeddings.db"
    conn = db.connect(db_path)
    migrations.migrate(conn)
    conn.close()
    service = EmbeddingService(cache=PersistentEmbeddingCache(db_path),
                               embedder=embedder, memo_size=100_000, runner=engine.run_task)

    def raw_encode(texts: list[str]) -> np.ndarray:
        return engine.run_task(lambda: model.encode(
            texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False))

    for text in sentences(20, seed=1):  # warm both paths: first calls allocate
        service.embed(text)
        raw_encode([text + " raw"])

    ours_texts, raw_texts = sentences(repeats, seed=2), sentences(repeats, seed=3)
    single_ours, single_raw = interleaved(lambda i: service.embed(ours_texts[i]),
                                          lambda i: raw_encode([raw_texts[i]]), repeats)
    # A memo hit takes well under a microsecond, below the timer's own noise: each sample is
    # the mean of 100 calls.
    memo_hits = [timed(lambda: [service.embed(text) for text in ours_texts[:100]]) / 100
                 for _ in range(max(20, repeats // 10))]
    persistent_hits = []
    for text in ours_texts[:min(repeats, 200)]:
        service.clear_memo()
        persistent_hits.append(timed(lambda: service.embed(text)))

    # Three rounds, alternating, each on texts neither side has seen.
    batch_ours, batch_raw = interleaved(
        lambda i: service.embed_many(sentences(batch_size, seed=10 + i)),
        lambda i: raw_encode(sentences(batch_size, seed=20 + i)), 3)

    # Cache hits are far below the timer's resolution relative to the model: reported, not
    # gated (their ratio to a model call swings with the machine).
    rows = [
        Row("embedding_single", "Embedding, single, warm (computed)", single_ours, single_raw,
            "p50 ≤ 10 ms"),
        Row("embedding_cached", "Embedding, in-process memo hit", memo_hits, single_raw,
            "≤ 0.05 ms", gate=False),
        Row("embedding_persistent", "Embedding, persistent cache hit (after restart)",
            persistent_hits, single_raw, "≤ 0.1 × uncached", gate=False),
        Row("embedding_batch", f"Embedding, batch of {batch_size:,} (3 rounds)", batch_ours,
            batch_raw, "≤ 1.2× raw"),
    ]
    for row in rows:
        row.raw_name = "sentence-transformers encode"
    return rows


def search_key(size: int) -> str:
    """The targets' keys: "search" is the 1,000-memory row."""
    if size == 1_000:
        return "search"
    return f"search_{size // 1_000_000}m" if size >= 1_000_000 else f"search_{size // 1_000}k"


def bench_search_rows(workdir: Path, quick: bool, sizes: tuple[int, ...] | None = None,
                      serve: bool = True) -> list[Row]:
    """Lumara's vector index beside a bare sqlite-vec KNN on the same file and numpy brute
    force on the same vectors, with recall@10 against exact search (lumara_bench/search.py).
    `serve`: the real server also starts on the largest collection (start times, RSS)."""
    rows = []
    sizes = sizes or (QUICK_SIZES if quick else FULL_SIZES)
    for result in bench_search_scale(workdir / "search", sizes=sizes, quick=quick,
                                     serve_sizes=(max(sizes),) if serve else (),
                                     models_dir=workdir / "models",
                                     log=lambda line: print(line, flush=True)):
        size, samples = result["size"], result["samples"]
        label = f"Search top-10, {size:,} memories ({result['layout']})"
        note = (f"{result['notes']}; recall@10 near/far queries {result['recall_near']}/"
                f"{result['recall_far']}; type-filtered p50 {result['typed_p50_ms']} ms "
                f"(recall {result['typed_recall']}); index load {result['load_s']} s, "
                f"{result['index_mb']} MB")
        rows.append(Row(search_key(size), label, samples["ours"], samples["raw"],
                        "≤ 0.5 ms" if size <= 1_000 else "≤ 10 ms" if size <= 100_000
                        else "≤ 50 ms", recall=result["recall"], note=note,
                        raw_name=result["raw_name"],
                        # An IVF probe and a full scalar scan differ too much in kind for
                        # their ratio to cancel machine noise (quick vs full runs: 1.5×).
                        gate=result["layout"] == "exact"))
        rows.append(Row(search_key(size) + "_numpy", f"{label} vs numpy brute force",
                        samples["ours"], samples["numpy"], "—", recall=result["recall"],
                        raw_name="numpy X @ q + argpartition",
                        gate=False))  # numpy's BLAS threads make its small-size times swing
        if result.get("restart_s") is not None:
            rows.append(Row(search_key(size) + "_restart",
                            f"Later start: vector index ready, {size:,} memories "
                            f"({result['restart_source']})", [result["restart_s"] * 1000],
                            [result["load_s"] * 1000], "≤ 2 s",
                            raw_name="the first start: every vector read from SQLite",
                            gate=False))
        if result.get("server"):
            rows += large_collection_rows(size, result["server"])
        if samples.get("hybrid"):
            # The 10,000-memory row is the hybrid_search target's (issue 8's 5 ms limit).
            key = "hybrid_search" if size == 10_000 else search_key(size) + "_hybrid"
            rows.append(Row(key,
                            f"Hybrid search top-10 (keywords + vectors, RRF), {size:,} memories",
                            samples["hybrid"], samples["ours"], "≤ 5 ms",
                            raw_name="Lumara vector-only search (same queries)",
                            note="the raw column is vector-only search: the difference is the "
                            "FTS5 keyword query, the cosines of keyword hits and the fusion",
                            gate=False))  # two of our own paths: no library anchors them
    return rows


def large_collection_rows(size: int, server: dict) -> list[Row]:
    """The server started on the largest search collection (server.measure_large_collection):
    its keys are the targets' at 1,000,000 (rss_1m, start_1m_http, start_1m_search)."""
    suffix = search_key(size).removeprefix("search_")
    source = server["index"]["source"]
    note = (f"a later start on {size:,} memories, the index saved by the search benchmark "
            f"(loaded from: {source}); models ready after {server['models_ready_ms']:,.0f} ms")
    return [
        Row(f"start_{suffix}_http", f"Later start, {size:,} memories: HTTP answering",
            [server["http_ms"]], None, "≤ 1 s", note=note, gate=False),
        Row(f"start_{suffix}_search", f"Later start, {size:,} memories: search at full "
            "speed (vector index loaded)", [server["index_ready_ms"]], None, "≤ 2 s",
            note=note, gate=False),
        Row(f"rss_{suffix}", f"Server RSS: both models loaded, {size:,} memories, after a "
            f"chat and {len(server['api_search_ms'])} searches", [server["rss_mb"]], None,
            "≤ 500 MB", unit="MB", note=note, gate=False),
        Row(f"api_search_{suffix}", f"API search (query embedded + hybrid top-10), "
            f"{size:,} memories", server["api_search_ms"], None, "—", note=note, gate=False),
    ]


CHAT_MEMORIES = [
    "My sister Ana lives in Lisbon with her two cats.",
    "I am allergic to penicillin; it gave me a rash in 2019.",
    "To make cold brew I steep 100 g of coarse coffee in 1 litre of water for 16 hours.",
    "My passport expires in March 2028.",
    "My manager Priya prefers written status updates on Fridays.",
    "The car needs an oil change every 15,000 kilometres.",
    "Our apartment lease renews every September and needs 60 days notice.",
    "I run every Saturday morning with my running club.",
    "The spare key is with the neighbour at number 12.",
    "My dentist is Dr. Silva and her practice is on Rua Augusta.",
]
CHAT_QUESTIONS = [
    "Where does my sister live?", "What am I allergic to?", "How do I make cold brew?",
    "When does my passport expire?", "How does my manager like status updates?",
    "How often does the car need an oil change?", "When does the lease renew?",
    "Who has the spare key?",
]


def raw_llama(engine: LlamaEngine) -> Any:
    """The raw anchor: a bare llama-cpp-python Llama on the engine's model and settings."""
    from llama_cpp import Llama

    with without_extra_buffer_types():
        return Llama(str(engine.model_path), **llama_options(
            engine.n_ctx, engine.threads, engine.kv_cache_type))


def bench_chat(workdir: Path, embedder: Embedder, engine: LlamaEngine, conversations: int,
               turns: int) -> tuple[list[Row], dict]:
    """Memory-grounded questions on the default settings (the memories above the similarity
    threshold, at most chat_memory_k, go into the prompt), through ChatService (embed,
    retrieve, prompt, queue, stream), then the same prompts through a raw llama-cpp-python
    Llama with the same settings: first turns (fresh conversation) and following turns."""
    from lumara_web import create_app
    from lumara_web.storage.store import count_memories

    app = create_app({"data_dir": str(workdir / "chat"), "engine": engine,
                      "embedder": embedder})
    services = app.extensions["lumara"]
    engine.model.wait(120)
    conn = db.connect(services.settings["db_path"])
    for content in CHAT_MEMORIES:
        services.memories.add(conn, validation.parse_new_memory({"content": content},
                                                                services.settings))
    assert count_memories(conn) == len(CHAT_MEMORIES)
    prompts_sent: list[tuple[int, list[dict]]] = []  # (turn number, messages)
    submit = engine.submit
    current_turn = 0
    recalled: list[int] = []  # memories in each answered question's prompt

    def recording_submit(request, stop=None):
        if request.purpose == "chat":
            prompts_sent.append((current_turn, request.messages))
        return submit(request, stop)

    engine.submit = recording_submit
    ours: dict[str, list[float]] = {"first": [], "following": [], "total": [], "rate": []}
    for conversation in range(conversations):
        conversation_id = None
        for turn in range(turns):
            current_turn = turn
            question = CHAT_QUESTIONS[(conversation + turn) % len(CHAT_QUESTIONS)]
            events = list(services.chat.turn(conn, TurnRequest(question, conversation_id)))
            done = next(event for event in events if event["type"] == "done")
            conversation_id = done["conversation_id"]
            if done["stats"]["source"] != "model":
                continue  # answered without the model (no memory matched): not timed
            recalled.append(len(next(event["items"] for event in events
                                     if event["type"] == "memories")))
            stats = done["stats"]
            ours["first" if turn == 0 else "following"].append(stats["ttft_ms"])
            ours["total"].append(stats["total_ms"])
            if stats["tokens_per_s"]:
                ours["rate"].append(stats["tokens_per_s"])
    conn.close()
    engine.submit = submit

    raw_llm = raw_llama(engine)
    warm = prompts.answer_messages([], "What do you remember?", [])
    engine.run_task(lambda: list(raw_llm.create_chat_completion(  # the same warm start
        warm, max_tokens=1, stream=True)))
    raw: dict[str, list[float]] = {"first": [], "following": [], "total": [], "rate": []}

    def raw_answer(messages: list[dict]) -> tuple[float, float | None, float, int]:
        started = time.perf_counter()
        first = None
        tokens = 0
        for chunk in raw_llm.create_chat_completion(
                messages, stream=True, max_tokens=services.settings["answer_max_tokens"],
                temperature=0.0):
            if chunk["choices"][0]["delta"].get("content"):
                first = first or time.perf_counter()
                tokens += 1
        return started, first, time.perf_counter(), tokens

    for turn, messages in prompts_sent:
        # On the inference thread too: a second thread's OpenMP pool would slow both.
        started, first, finished, tokens = engine.run_task(lambda: raw_answer(messages))
        raw["first" if turn == 0 else "following"].append((first - started) * 1000)
        raw["total"].append((finished - started) * 1000)
        if tokens > 1:
            raw["rate"].append((tokens - 1) / (finished - first))
    rows = [
        Row("chat_ttft_first", "Chat TTFT, first turn", ours["first"],
            raw["first"], "p50 ≤ 300 ms"),
        Row("chat_ttft", "Chat TTFT, following turns", ours["following"], raw["following"],
            "p50 ≤ 300 ms"),
        Row("chat_answer", "Chat full answer", ours["total"], raw["total"], "≤ 1.2 s"),
        Row("chat_tokens_per_s", "Chat generation speed", ours["rate"], raw["rate"],
            "≥ 0.95× raw", unit="tok/s"),
    ]
    rows = [row for row in rows if row.ours and row.raw]
    for row in rows:
        row.raw_name = "llama-cpp-python create_chat_completion (stream)"
    return rows, {"chat_model": engine.model_name, "chat_threads": engine.threads,
                  "chat_turns": len(prompts_sent),
                  "chat_memories_per_prompt": float(np.mean(recalled)) if recalled else 0.0}


# A long conversation: something to remember, then a question about it, LONG_PAIRS times.
LONG_CONVERSATION = [
    ("My sister Ana lives in Porto.", "Where does my sister live?"),
    ("I parked the car on level 3 of the airport garage.", "Where did I park the car?"),
    ("My dentist appointment is on 14 March at 9:30.", "When is my dentist appointment?"),
    ("My manager Olu wants status updates every Friday.", "When does Olu want updates?"),
    ("I keep the spare key under the blue flowerpot.", "Where is my spare key?"),
    ("My passport expires in August 2029.", "When does my passport expire?"),
    ("Our cat Biscuit only eats salmon wet food.", "What does our cat Biscuit eat?"),
    ("I take vitamin D every morning with breakfast.", "When do I take vitamin D?"),
    ("My plumber Marek charges 60 euros an hour.", "How much does my plumber charge?"),
    ("My gym membership renews on the 3rd of each month.", "When does my gym renew?"),
    ("I lent my drill to my neighbour Gwen.", "Who has my drill?"),
    ("My cousin Jonas teaches chemistry in Leeds.", "What does my cousin Jonas teach?"),
]
# Longest a turn waits for the previous one's background work (extraction, read-ahead).
IDLE_WAIT_S = 60


def bench_long_conversation(workdir: Path, embedder: Embedder, engine: LlamaEngine,
                            pairs: int) -> tuple[list[Row], dict]:
    """One conversation of 2 × `pairs` turns (a statement, then a question about it)
    through ChatService, each turn sent once the model is idle (a person reads the reply
    and writes the next message: seconds); then the same answer prompts, in order, through
    one raw llama-cpp-python Llama, which reuses what it holds of the previous prompt."""
    from lumara_web import create_app

    app = create_app({"data_dir": str(workdir / "long-chat"), "engine": engine,
                      "embedder": embedder})
    services = app.extensions["lumara"]
    engine.model.wait(120)
    conn = db.connect(services.settings["db_path"])
    sent: list[list[dict]] = []
    submit = engine.submit

    def recording_submit(request, stop=None):
        if request.purpose == "chat":
            sent.append(request.messages)
        return submit(request, stop)

    engine.submit = recording_submit
    ours: list[float] = []
    conversation_id = None
    try:
        for statement, question in LONG_CONVERSATION[:pairs]:
            for message in (statement, question):
                engine.wait_idle(IDLE_WAIT_S)
                events = list(services.chat.turn(conn, TurnRequest(message, conversation_id)))
                done = next(event for event in events if event["type"] == "done")
                conversation_id = done["conversation_id"]
                if done["stats"]["source"] == "model":
                    ours.append(done["stats"]["ttft_ms"])
        engine.wait_idle(IDLE_WAIT_S)
    finally:
        engine.submit = submit
        conn.close()

    raw_llm = raw_llama(engine)
    raw: list[float] = []

    def first_token(messages: list[dict]) -> float:
        started = time.perf_counter()
        for chunk in raw_llm.create_chat_completion(
                messages, stream=True, temperature=0.0,
                max_tokens=services.settings["answer_max_tokens"]):
            if chunk["choices"][0]["delta"].get("content"):
                return (time.perf_counter() - started) * 1000
        return (time.perf_counter() - started) * 1000

    for messages in sent:
        raw.append(engine.run_task(lambda: first_token(messages)))
    row = Row("chat_ttft_long", f"Chat TTFT over a {2 * pairs}-turn conversation "
              "(statements and questions)", ours, raw, "p50 ≤ 250 ms, p95 ≤ 400 ms",
              raw_name="llama-cpp-python create_chat_completion (stream), same prompts")
    return ([row] if ours and raw else []), {"long_conversation_turns": 2 * pairs,
                                             "long_conversation_answers": len(ours)}


def machine_facts() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    conn = db.connect(":memory:")
    versions = db.versions(conn)
    conn.close()
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}", **versions}


def bench_server(workdir: Path, quick: bool) -> tuple[list[Row], dict]:
    """The whole server in a child process, as a user starts it (no raw twin for these;
    the API figure's anchor is the same requests on the idle server)."""
    startup = measure_startup(workdir, restarts=2 if quick else 5)
    loaded = measure_loaded_server(workdir, memories=1_000 if quick else 10_000, streams=3,
                                   rounds=40 if quick else 200, seconds=5 if quick else 30)
    rows = [
        Row("first_setup", "First-time setup (empty data dir → models ready)",
            [startup["first_setup_ms"]], None, "≤ 10 s", gate=False),
        Row("start_http", "Later start: HTTP answering", startup["start_http_ms"], None,
            "≤ 1 s", gate=False),
        Row("start_ready", "Later start: models ready", startup["start_ready_ms"], None,
            "≤ 3 s", gate=False),
        Row("rss", f"Server RSS: both models loaded, {loaded['memories']:,} memories, "
            "after a chat", [loaded["rss_mb"]], None, "≤ 400 MB", unit="MB", gate=False),
        Row("api_while_chatting", f"API while {loaded['streams']} chats stream "
            "(raw = same requests, idle server)", loaded["api_busy_ms"], loaded["api_idle_ms"],
            "p95 ≤ 50 ms", gate=False, raw_name="same requests, idle server"),
    ]
    facts = {"rss_after_load_mb": loaded["rss_after_load_mb"],
             "answers_during_load": loaded["answers_during_load"],
             "answers_failed": loaded["answers_failed"],
             "first_setup_http_ms": startup["first_setup_http_ms"]}
    return rows, facts


def target_value(target: Target, row: Row) -> float:
    """The row's figure for the statistic the target's aim is about."""
    if target.statistic == "p95":
        return row.tail
    if target.statistic == "avg":
        return float(np.mean(row.ours))
    return row.p50


def render(rows: list[Row], machine: dict, facts: dict) -> str:
    by_key = {row.key: row for row in rows}
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python -m lumara_bench` (Lumara {__version__}) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f"{' in quick mode' if facts.get('quick') else ''}.",
        "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['system']}",
        f"- Python {machine['python']}, SQLite {machine['sqlite_version']} "
        f"({machine['driver']}), sqlite-vec {machine['sqlite_vec_version']}, "
        f"sentence-transformers {facts['sentence_transformers']} (raw anchor), "
        f"Lumara's embedder: {facts['embedder']}",
        f"- Embedding model {EMBEDDING_MODEL_ID}: import of sentence-transformers "
        f"{facts['import_seconds']:.2f} s, model load {facts['load_seconds']:.2f} s",
        *([f"- Chat model {facts['chat_model']}, {facts['chat_threads']} threads, "
           f"{facts['chat_turns']} timed questions on the default settings, "
           f"{facts['chat_memories_per_prompt']:.1f} memories per prompt on average "
           "(the same prompts on both sides)"]
          if "chat_model" in facts else []),
        "",
        "## The promised table",
        "",
        "| Operation | Promise | Our aim | Measured | Status |",
        "|---|---|---|---|---|",
    ]
    for target in TARGETS:
        row = by_key.get(target.key)
        if row is None:
            lines.append(f"| {target.operation} | {target.promise} | {target.aim} | "
                         "not measured in this run | — |")
            continue
        value = target_value(target, row)
        measured = row.show(value) + (f", recall@10 {row.recall:.3f}" if row.recall else "")
        status = target.status(value)
        if row.recall is not None and row.recall < 0.95:
            status = "missed"
        lines.append(f"| {target.operation} | {target.promise} | {target.aim} | {measured} "
                     f"({target.statistic}) | {status} |")
    header = ["Operation", "Lumara p50", "Lumara p95", "Raw library p50", "Ratio", "Aim"]
    lines += [
        "",
        "## Every figure beside its raw-library anchor",
        "",
        "Raw library = the same operation without Lumara, in the same process and run: "
        "`SentenceTransformer.encode`, a bare `vec0` KNN query or numpy brute force on the same "
        "vectors, llama-cpp-python's `create_chat_completion` streaming the prompts Lumara sent "
        "(Lumara's chat TTFT also includes embedding the question and retrieving memories). "
        "Ratio = Lumara p50 / raw p50 (for a rate, raw / Lumara): above 1 means Lumara is "
        "slower. For tokens/s the p95 column is the slow tail (5th percentile). `.ci/run` "
        "fails when a gated ratio gets more than 2× worse than recorded here.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    if "rss_after_load_mb" in facts:
        lines += ["", f"Under load: {facts['answers_during_load']} answers streamed to 3 "
                  f"concurrent chats while the API was timed ({facts['answers_failed']} "
                  f"failed); server RSS afterwards {facts['rss_after_load_mb']:,.0f} MB. "
                  f"First setup answered HTTP after {facts['first_setup_http_ms']:,.0f} ms."]
    notes = [f"- {row.operation}: {row.note}" for row in rows if row.note]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines) + "\n"


def check_regressions(rows: list[Row], recorded_path: Path, factor: float = 2.0) -> list[str]:
    """Gated rows whose ratio to their raw anchor is more than `factor` × worse than the
    ratio recorded in `recorded_path` (both ratios come from one run each, so the machine's
    speed cancels out)."""
    recorded = {row["key"]: row for row in json.loads(recorded_path.read_text())["rows"]}
    failures = []
    for row in rows:
        before = recorded.get(row.key)
        if not row.gate or row.ratio is None or not before or not before.get("ratio"):
            continue
        verdict = "REGRESSED" if row.ratio > factor * before["ratio"] else "ok"
        print(f"{verdict:>9}  {row.operation}: ratio {row.ratio:.2f} (recorded "
              f"{before['ratio']:.2f}, limit {factor * before['ratio']:.2f})")
        if verdict != "ok":
            failures.append(row.operation)
    return failures


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def figures_path(output: Path) -> Path:
    """Where the figures of a report written to `output` go."""
    return (RECORDED_FIGURES if output.resolve() == DOCS_MD.resolve()
            else output.with_name("benchmarks.json"))


def write_speed_report(output: Path, report: str, figures: dict) -> None:
    """The speed report into `output` and its figures into figures_path(output); the Answer
    quality section and figures, written by `--eval` runs, are kept."""
    output.parent.mkdir(parents=True, exist_ok=True)
    kept = evaluation.section_of(_read(output))
    output.write_text(report if kept is None else evaluation.replace_section(report, kept))
    json_path = figures_path(output)
    quality = json.loads(_read(json_path) or "{}").get("answer_quality")
    json_path.write_text(json.dumps(
        {**figures, **({"answer_quality": quality} if quality else {})}, indent=1) + "\n")


def default_eval_dirs() -> list[Path]:
    shared = PROJECT_ROOT.parent / "shared" / "eval"
    return [shared] if shared.is_dir() else []


def bench_answer_quality(args: argparse.Namespace, output: str) -> None:
    """`--eval`: the retrieval, pairs, intents and chat evaluations on the app's embedder (and
    the chat model, loaded once, for the pairs' model variants and the chat), into the
    output's Answer quality section and benchmarks.json's answer_quality."""
    dirs = ([] if args.only_eval_dirs else default_eval_dirs()) + list(args.eval_dir)
    if not dirs:
        sys.exit("no evaluation files: ../shared/eval does not exist; pass --eval-dir DIR")

    def load_engine() -> LlamaEngine:  # its worker thread ends with the process
        engine = LlamaEngine()
        engine.start()
        if not engine.model.settle(120) or engine.model.state != "ready":
            raise RuntimeError(f"the chat model did not load: {engine.model.error}")
        return engine

    with tempfile.TemporaryDirectory(prefix="lumara-eval-") as tmp:
        embedder = load_app_embedder(Path(tmp))
        try:
            section, figures = evaluation.evaluate_dirs(
                dirs, embedder=embedder, settings=load_settings({"data_dir": tmp}),
                distractors=args.distractors, engine_factory=load_engine,
                log=lambda line: print(line, flush=True))
        except LumaraError as failure:  # a bad evaluation file: say which line
            sys.exit(failure.message)
    print(section)
    if output:
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(evaluation.replace_section(_read(path), section))
        json_path = figures_path(path)
        recorded = json.loads(_read(json_path) or "{}")
        recorded["answer_quality"] = figures
        json_path.write_text(json.dumps(recorded, indent=1, default=str) + "\n")
        print(f"written to {output} (Answer quality) and {json_path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lumara_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="a short run for CI: fewer samples, small collections")
    parser.add_argument("--check", action="store_true",
                        help="fail when a ratio is > 2x worse than the recorded figures "
                        "(lumara_web/observability/benchmarks.json)")
    parser.add_argument("--repeats", type=int, help="samples per timed operation")
    parser.add_argument("--batch", type=int, help="texts in the batch test")
    parser.add_argument("--conversations", type=int,
                        help="chat conversations to time (0 skips the chat benchmark)")
    parser.add_argument("--turns", type=int, default=4, help="questions per conversation")
    parser.add_argument("--long-pairs", type=int, choices=range(1, len(LONG_CONVERSATION) + 1),
                        metavar="N", help="statement-and-question pairs of the long "
                        f"conversation (default {len(LONG_CONVERSATION)})")
    parser.add_argument("--import-memories", type=int, metavar="N",
                        help="memories imported (default 1,000 quick, 100,000 full)")
    parser.add_argument("--search-sizes", type=lambda text: tuple(int(v) for v in text.split(",")),
                        help="collection sizes for search, e.g. 1000,100000 (default: 1k, 10k, "
                        "100k; 1M too in full mode)")
    parser.add_argument("--no-server", action="store_true",
                        help="skip the start-up, memory and load measurements")
    parser.add_argument("--output", help="markdown file to write ('' to only print; default "
                        "docs/BENCHMARKS.md, or nothing in quick mode)")
    parser.add_argument("--eval", action="store_true",
                        help="measure answer quality instead of speed (evaluation.py, "
                        "pair_eval.py, intent_eval.py, chat_eval.py): writes the Answer "
                        "quality section of the output")
    parser.add_argument("--eval-dir", action="append", type=Path, default=[],
                        help="a folder of retrieval*.jsonl / pairs*.jsonl / intents*.jsonl / "
                        "chat*.jsonl files to evaluate too, on its own (repeatable; default: "
                        "../shared/eval alone)")
    parser.add_argument("--only-eval-dirs", action="store_true",
                        help="evaluate only the --eval-dir folders, not ../shared/eval")
    parser.add_argument("--distractors", type=int, default=evaluation.DEFAULT_DISTRACTORS,
                        help="generated memories mixed in for the retrieval evaluation "
                        "(0: the evaluation's memories alone)")
    args = parser.parse_args(argv)
    quick = args.quick
    repeats = args.repeats or (30 if quick else 200)
    batch = args.batch or (200 if quick else 1000)
    conversations = args.conversations if args.conversations is not None else \
        (2 if quick else 5)
    output = args.output if args.output is not None else ("" if quick else str(DOCS_MD))
    if args.eval:
        bench_answer_quality(args, output)
        return

    with tempfile.TemporaryDirectory(prefix="lumara-bench-") as tmp:
        workdir = Path(tmp)
        engine = LlamaEngine()  # its thread runs all inference, as in the server
        engine.start()
        model, facts = load_embedding_model()
        facts["quick"] = quick
        ours_embedder = load_app_embedder(workdir)
        facts["embedder"] = type(ours_embedder).__name__
        rows = bench_embeddings(workdir, ours_embedder, model, engine, repeats, batch)
        rows += bench_search_rows(workdir, quick, args.search_sizes, serve=not args.no_server)
        if conversations:
            chat_rows, chat_facts = bench_chat(workdir, ours_embedder, engine, conversations,
                                               args.turns)
            rows += chat_rows
            facts.update(chat_facts)
            imported = bench_import(ours_embedder, args.import_memories or (
                1_000 if quick else 100_000), workdir, runner=engine.run_task)
            phases = ", ".join(f"{phase} {seconds:,.1f} s"
                               for phase, seconds in imported["phase_seconds"].items())
            rows += [Row(
                "import", f"Import of {imported['count']:,} memories through the server's "
                "job, embedded there", [imported["per_s"]], [imported["raw_embedding_per_s"]],
                "≥ 0.8× raw", unit="memories/s",
                raw_name="the app's embedder alone, same texts, batches of 64",
                note=f"from the POST to done, against {STORED_BEFORE_IMPORT:,} stored "
                     f"memories: accepted in {imported['accepted_s']:,.1f} s, then {phases}",
                gate=False), Row(
                "api_while_importing", f"API while the server imports {imported['count']:,} "
                "memories (raw = same requests, idle server)", imported["api_busy_ms"],
                imported["api_idle_ms"], "p95 ≤ 50 ms", gate=False,
                raw_name="same requests, idle server",
                note=f"p95 by phase: {imported['api_p95_by_phase']}")]
            long_rows, long_facts = bench_long_conversation(
                # 24 turns in quick mode too (~30 s): its ratio is then the recorded one's.
                workdir, ours_embedder, engine,
                pairs=args.long_pairs or len(LONG_CONVERSATION))
            rows += long_rows
            facts.update(long_facts)
        if not args.no_server:
            server_rows, server_facts = bench_server(workdir, quick)
            rows += server_rows
            facts.update(server_facts)
    report = render(rows, machine_facts(), facts)
    print(report)
    if output:
        write_speed_report(Path(output), report, {
            "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "quick": quick,
            "machine": machine_facts(), "facts": facts,
            "rows": [row.to_dict() for row in rows]})
        print(f"written to {output} and {figures_path(Path(output))}")
    if args.check:
        failures = check_regressions(rows, RECORDED_FIGURES)
        if failures:
            sys.exit(f"benchmark regression: {', '.join(failures)}")


if __name__ == "__main__":
    main()
