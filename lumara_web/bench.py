"""`python -m lumara_web.bench`: measure Lumara's hot paths beside the raw libraries.

Every Lumara figure is printed next to the same operation done by raw sentence-transformers
or a raw sqlite-vec query in the same run, with the ratio, so overhead is visible and the
machine's speed cancels out. Results go to stdout and docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import PROJECT_ROOT, __version__, db, migrations, prompts, retrieval, store, validation
from .bundled import EMBEDDING_MODEL_ID, embedding_model_path
from .chat import TurnRequest
from .engine import (DECODE_BATCH, Engine, LlamaEngine, _without_extra_buffer_types,
                     machine_cores)
from .embeddings import (EmbeddingService, PersistentEmbeddingCache,
                         SentenceTransformerEmbedder, import_sentence_transformers)

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
    operation: str
    ours: list[float]  # milliseconds per sample (or tokens/s when unit is "tok/s")
    raw: list[float] | None
    aim: str
    unit: str = "ms"

    @staticmethod
    def p(samples: list[float], q: float) -> float:
        return float(np.percentile(samples, q))

    def show(self, value: float) -> str:
        return f"{value:.1f} tok/s" if self.unit == "tok/s" else fmt(value)

    def cells(self) -> list[str]:
        # For a rate, "p95" is the slow tail: the 5th percentile.
        tail = 5 if self.unit == "tok/s" else 95
        ours50, ours_tail = self.p(self.ours, 50), self.p(self.ours, tail)
        if self.raw is None:
            return [self.operation, self.show(ours50), self.show(ours_tail), "—", "—", self.aim]
        raw50 = self.p(self.raw, 50)
        ratio = ours50 / raw50
        shown = f"{ratio:.2f}×" if ratio >= 0.1 else f"{1 / ratio:,.0f}× faster"
        return [self.operation, self.show(ours50), self.show(ours_tail), self.show(raw50),
                shown, self.aim]


def fmt(ms: float) -> str:
    return f"{ms:.4f} ms" if ms < 0.1 else f"{ms:.2f} ms" if ms < 100 else f"{ms:,.0f} ms"


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


def bench_embeddings(workdir: Path, model: object, engine: Engine, repeats: int,
                     batch_size: int) -> list[Row]:
    """One model object serves both sides, and both run on the app's inference thread
    (as in the server; see engine.py): the comparison isolates Lumara's own layers."""
    db_path = workdir / "embeddings.db"
    conn = db.connect(db_path)
    migrations.migrate(conn)
    conn.close()
    service = EmbeddingService(cache=PersistentEmbeddingCache(db_path),
                               embedder=SentenceTransformerEmbedder(model, EMBEDDING_MODEL_ID),
                               memo_size=100_000, runner=engine.run_task)

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
    memo_hits = [timed(lambda: service.embed(ours_texts[i % min(50, repeats)]))
                 for i in range(2000)]
    persistent_hits = []
    for text in ours_texts[:min(repeats, 200)]:
        service.clear_memo()
        persistent_hits.append(timed(lambda: service.embed(text)))

    # Three rounds, alternating, each on texts neither side has seen.
    batch_ours, batch_raw = interleaved(
        lambda i: service.embed_many(sentences(batch_size, seed=10 + i)),
        lambda i: raw_encode(sentences(batch_size, seed=20 + i)), 3)

    return [
        Row("Embedding, single, warm (computed)", single_ours, single_raw, "p50 ≤ 15 ms"),
        Row("Embedding, in-process memo hit", memo_hits, single_raw, "≤ 0.1 ms"),
        Row("Embedding, persistent cache hit", persistent_hits, single_raw, "≤ 0.1 ms"),
        Row(f"Embedding, batch of {batch_size:,} (3 rounds)", batch_ours, batch_raw,
            "≤ 1.2× raw"),
    ]


def bench_search(workdir: Path, size: int, queries: int) -> Row:
    rng = np.random.default_rng(size)
    vectors = rng.standard_normal((size, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    conn = db.connect(workdir / f"search-{size}.db")
    migrations.migrate(conn)
    conn.execute("CREATE VIRTUAL TABLE raw_vectors USING vec0("
                 "embedding float[384] distance_metric=cosine)")
    with db.transaction(conn):
        for index, vector in enumerate(vectors):
            store.insert_memory(conn, content=f"synthetic memory {index}", type="knowledge",
                                tags=[], embedding=vector)
            conn.execute("INSERT INTO raw_vectors (rowid, embedding) VALUES (?, ?)",
                         (index + 1, store.vector_to_blob(vector)))
    probes = rng.standard_normal((queries, 384)).astype(np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)

    def raw_query(index: int) -> list:
        return conn.execute("SELECT rowid, distance FROM raw_vectors WHERE embedding MATCH ?"
                            " AND k = 10", (store.vector_to_blob(probes[index]),)).fetchall()

    # threshold -1 keeps all k hits, so both sides return the same ten rows.
    def our_query(index: int) -> list:
        return retrieval.search(conn, probes[index], k=10, threshold=-1.0)

    for index in range(5):
        our_query(index), raw_query(index)
    ours, raw = interleaved(our_query, raw_query, queries)
    conn.close()
    aim = "≤ 1 ms" if size <= 1000 else "≤ 1.2× raw"
    return Row(f"Search top-10, {size:,} memories (vector given)", ours, raw, aim)


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


def bench_chat(workdir: Path, model: object, engine: LlamaEngine, conversations: int,
               turns: int) -> tuple[list[Row], dict]:
    """Memory-grounded questions with 5 memories in each prompt, through ChatService (embed,
    retrieve, prompt, queue, stream), then the same prompts through a raw llama-cpp-python
    Llama with the same settings: first turns (fresh conversation) and following turns."""
    from . import create_app
    from .store import count_memories

    app = create_app({"data_dir": str(workdir / "chat"), "engine": engine,
                      "embedder": SentenceTransformerEmbedder(model, EMBEDDING_MODEL_ID),
                      "chat_memory_threshold": -1.0})  # always 5 memories in the prompt
    services = app.extensions["lumara"]
    engine.model.wait(120)
    conn = db.connect(services.settings["db_path"])
    for content in CHAT_MEMORIES:
        services.memories.add(conn, validation.parse_new_memory({"content": content},
                                                                services.settings))
    assert count_memories(conn) == len(CHAT_MEMORIES)
    prompts_sent: list[list[dict]] = []
    submit = engine.submit

    def recording_submit(request, stop=None):
        if request.purpose == "chat":
            prompts_sent.append(request.messages)
        return submit(request, stop)

    engine.submit = recording_submit
    ours: dict[str, list[float]] = {"first": [], "following": [], "total": [], "rate": []}
    for conversation in range(conversations):
        conversation_id = None
        for turn in range(turns):
            question = CHAT_QUESTIONS[(conversation + turn) % len(CHAT_QUESTIONS)]
            events = list(services.chat.turn(conn, TurnRequest(question, conversation_id)))
            done = next(event for event in events if event["type"] == "done")
            conversation_id = done["conversation_id"]
            stats = done["stats"]
            ours["first" if turn == 0 else "following"].append(stats["ttft_ms"])
            ours["total"].append(stats["total_ms"])
            if stats["tokens_per_s"]:
                ours["rate"].append(stats["tokens_per_s"])
    conn.close()
    engine.submit = submit

    from llama_cpp import Llama

    with _without_extra_buffer_types():
        raw_llm = Llama(str(engine.model_path), n_ctx=engine.n_ctx, n_threads=machine_cores(),
                        n_threads_batch=machine_cores(), n_batch=DECODE_BATCH, verbose=False)
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

    for index, messages in enumerate(prompts_sent):
        # On the inference thread too: a second thread's OpenMP pool would slow both.
        started, first, finished, tokens = engine.run_task(lambda: raw_answer(messages))
        raw["first" if index % turns == 0 else "following"].append((first - started) * 1000)
        raw["total"].append((finished - started) * 1000)
        if tokens > 1:
            raw["rate"].append((tokens - 1) / (finished - first))
    rows = [
        Row("Chat TTFT, first turn (5 memories)", ours["first"], raw["first"], "p50 ≤ 500 ms"),
        Row("Chat TTFT, following turns", ours["following"], raw["following"], "p50 ≤ 500 ms"),
        Row("Chat full answer", ours["total"], raw["total"], "≤ 2 s"),
        Row("Chat generation speed", ours["rate"], raw["rate"], "≥ 0.95× raw", unit="tok/s"),
    ]
    return rows, {"chat_model": engine.model_name, "chat_threads": engine.threads,
                  "chat_turns": conversations * turns}


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


def render(rows: list[Row], machine: dict, facts: dict) -> str:
    header = ["Operation", "Lumara p50", "Lumara p95", "Raw library p50", "Ratio", "Aim"]
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python -m lumara_web.bench` (Lumara {__version__}) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['system']}",
        f"- Python {machine['python']}, SQLite {machine['sqlite_version']} "
        f"({machine['driver']}), sqlite-vec {machine['sqlite_vec_version']}, "
        f"sentence-transformers {facts['sentence_transformers']}, "
        f"torch threads {facts['torch_threads']}",
        f"- Embedding model {EMBEDDING_MODEL_ID}: import of sentence-transformers "
        f"{facts['import_seconds']:.2f} s, model load {facts['load_seconds']:.2f} s",
        *([f"- Chat model {facts['chat_model']}, {facts['chat_threads']} threads, "
           f"{facts['chat_turns']} timed questions (same prompts on both sides)"]
          if "chat_model" in facts else []),
        "",
        "Raw library = the same operation without Lumara: `SentenceTransformer.encode` on the "
        "same model object, a bare `vec0` KNN query on a table of the same vectors, or "
        "llama-cpp-python's `create_chat_completion` on the prompts Lumara sent (Lumara's chat "
        "TTFT also includes embedding the question and retrieving memories). "
        "Ratio = Lumara p50 / raw p50 (below 1 means Lumara is faster, e.g. a cache hit).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lumara_web.bench", description=__doc__)
    parser.add_argument("--repeats", type=int, default=200, help="samples per timed operation")
    parser.add_argument("--batch", type=int, default=1000, help="texts in the batch test")
    parser.add_argument("--sizes", default="1000,10000", help="memory counts for search")
    parser.add_argument("--conversations", type=int, default=5,
                        help="chat conversations to time (0 skips the chat benchmark)")
    parser.add_argument("--turns", type=int, default=4, help="questions per conversation")
    parser.add_argument("--output", default=str(PROJECT_ROOT / "docs" / "BENCHMARKS.md"),
                        help="markdown file to write ('' to only print)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lumara-bench-") as tmp:
        workdir = Path(tmp)
        engine = LlamaEngine()  # its thread runs all inference, as in the server
        engine.start()
        model, facts = load_embedding_model()
        rows = bench_embeddings(workdir, model, engine, args.repeats, args.batch)
        for size in (int(value) for value in args.sizes.split(",") if value):
            rows.append(bench_search(workdir, size, args.repeats))
        if args.conversations:
            chat_rows, chat_facts = bench_chat(workdir, model, engine, args.conversations,
                                               args.turns)
            rows += chat_rows
            facts.update(chat_facts)
    report = render(rows, machine_facts(), facts)
    print(report)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(report)
        print(f"written to {args.output}")


if __name__ == "__main__":
    main()
