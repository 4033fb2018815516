"""Retrieval quality: does the retrieval the chat uses find the memory that answers a
question? (`python -m lumara_bench --eval`; the pairs half is pair_eval.py.)

An evaluation set is JSON lines (retrieval*.jsonl): memories
{"kind": "memory", "id", "content", "type"} and questions
{"kind": "question", "question", "answers": [memory ids]}. Ids are scoped to their file.
Each set's memories are stored in a fresh SQLite file through the real store (migrations,
triggers, the FTS5 keyword index) with the app's embedder, and every question goes through
MemoryService.recall with the chat's settings (chat_memory_k results at most, each at least
chat_memory_threshold) — the very call the chat makes — once per variant:

- recall@k: the share of questions with an answer among the first k memories returned
  (with several answer ids, any one counts: the chat needs one memory that answers);
- MRR: the mean of 1 / rank of the first answer returned (0 when none is: the chat never
  sees past chat_memory_k, so this is MRR@k);
- all again with seeded distractor memories mixed in (generated from the word lists below,
  never from an evaluation file, and naming none of the set's people: _people_free), and,
  with the distractors alone, the share of questions
  for which something was still recalled (the chat would answer from a memory that cannot
  answer it — lower is better);
- each variant's retrieval time at that size (the question already embedded).
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from lumara_web.config import MEMORY_TYPES
from lumara_web.errors import ValidationError
from lumara_web.inference.embeddings import EmbeddingService, PersistentEmbeddingCache
from lumara_web.memory.service import MemoryService
from lumara_web.search import retrieval
from lumara_web.search.aliases import same_person
from lumara_web.search.vector_index import VectorIndex
from lumara_web.storage import db, migrations, store
from lumara_web.storage.store import ScoredMemory
from lumara_web.text import stem, tokens

from . import chat_eval, intent_eval
from .eval_files import json_objects

DEFAULT_DISTRACTORS = 10_000
DISTRACTOR_SEED = 2026
# Timed repeats of each question per variant (the figure is the median over all of them).
LATENCY_REPEATS = 5


@dataclass(frozen=True)
class EvalMemory:
    key: str  # unique across the files of a run: "<file>#<id>"
    content: str
    type: str


@dataclass(frozen=True)
class EvalQuestion:
    question: str
    answers: frozenset[str]  # EvalMemory keys
    where: str  # file:line, for messages


@dataclass(frozen=True)
class RetrievalSet:
    memories: list[EvalMemory]
    questions: list[EvalQuestion]


def _bad(message: str) -> ValidationError:
    return ValidationError(message, code="invalid_eval_file")


def load_retrieval_set(paths: list[Path]) -> RetrievalSet:
    """The memories and questions of one or more retrieval files; a bad line is an error
    that names file:line and what to fix."""
    memories: list[EvalMemory] = []
    questions: list[EvalQuestion] = []
    for path in paths:
        ids: dict[str, str] = {}  # id → where it was defined
        pending: list[tuple[str, list[str], str]] = []
        for where, _, item in json_objects(path, "retrieval file", _bad):
            kind = item.get("kind")
            if kind == "memory":
                memory_id = _text_field(item, "id", where)
                if memory_id in ids:
                    raise _bad(f"{where}: memory id {memory_id!r} is already used at "
                               f"{ids[memory_id]}; ids must be unique in a file.")
                if item.get("type") not in MEMORY_TYPES:
                    raise _bad(f"{where}: type {item.get('type')!r} is not one of "
                               f"{', '.join(MEMORY_TYPES)}.")
                ids[memory_id] = where
                memories.append(EvalMemory(f"{path}#{memory_id}",
                                           _text_field(item, "content", where), item["type"]))
            elif kind == "question":
                answers = item.get("answers")
                if (not isinstance(answers, list) or not answers
                        or not all(isinstance(answer, str) for answer in answers)):
                    raise _bad(f"{where}: 'answers' must be a non-empty list of memory ids.")
                pending.append((_text_field(item, "question", where), answers, where))
            else:
                raise _bad(f"{where}: kind {kind!r} is neither 'memory' nor 'question'.")
        for question, answers, where in pending:
            unknown = [answer for answer in answers if answer not in ids]
            if unknown:
                raise _bad(f"{where}: answer id(s) {', '.join(map(repr, unknown))} name no "
                           f"memory in {path}.")
            questions.append(EvalQuestion(question, frozenset(f"{path}#{answer}"
                                                              for answer in answers), where))
    if not questions:
        raise _bad(f"{', '.join(map(str, paths)) or 'no files'}: no questions to evaluate.")
    return RetrievalSet(memories, questions)


def _text_field(item: dict, name: str, where: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{where}: '{name}' must be a non-empty string.")
    return value


# -- metrics ------------------------------------------------------------------------------
def retrieval_metrics(ranked: list[list[str]], answers: list[frozenset[str]]) -> dict:
    """recall@1, recall@5 and MRR (see the module docstring) of ranked keys per question."""
    first = [next((rank for rank, key in enumerate(keys, start=1) if key in expected), None)
             for keys, expected in zip(ranked, answers, strict=True)]
    count = len(first)
    return {"questions": count,
            "recall_at_1": sum(rank == 1 for rank in first) / count,
            "recall_at_5": sum(rank is not None and rank <= 5 for rank in first) / count,
            "mrr": sum(1 / rank for rank in first if rank is not None) / count}


# -- distractors ---------------------------------------------------------------------------
# Personal-memory sentences built from templates: people, places, dates, numbers,
# preferences, routines and methods, in the three memory types. Written for this purpose,
# not taken from any evaluation file.
_NAMES = ("Marta", "Tomás", "Helena", "Kofi", "Yuki", "Ravi", "Lena", "Oskar", "Amara",
          "Diego", "Ines", "Farid", "Greta", "Hugo", "Nadia", "Pavel", "Chloe", "Emeka",
          "Sofia", "Ibrahim", "Mei", "Lukas", "Rosa", "Anton", "Zara", "Bruno", "Leila",
          "Milan", "Carmen", "Theo")
_RELATIONS = ("my brother", "my aunt", "my uncle", "my nephew", "my niece", "my neighbour",
              "my colleague", "my landlord", "my coach", "my flatmate", "my godmother",
              "my father-in-law", "my old teacher", "my physiotherapist", "my accountant")
_CITIES = ("Bergen", "Valencia", "Kraków", "Ghent", "Bologna", "Tallinn", "Seville",
           "Lyon", "Utrecht", "Gdańsk", "Salzburg", "Cork", "Turku", "Ljubljana", "Nantes",
           "Braga", "Aarhus", "Trieste", "Brno", "Malmö")
_PLACES = ("the farmers market", "the climbing gym", "the public pool", "the hardware store",
           "the community garden", "the train station", "the town hall", "the repair café",
           "the bookshop on the corner", "the night pharmacy", "the ferry terminal",
           "the ice rink", "the recycling centre", "the music school", "the co-working space")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_THINGS = ("the bike lock", "the camping stove", "the winter tyres", "the ladder",
           "the sewing machine", "the projector", "the tent", "the drill", "the snow boots",
           "the picnic blanket", "the label printer", "the jump starter", "the sleeping bags",
           "the tripod", "the pressure cooker")
_SPOTS = ("in the hallway cupboard", "under the stairs", "in the blue crate in the attic",
          "in the car boot", "on the top shelf of the garage", "behind the boiler",
          "in the cellar next to the paint", "at my parents' house")
_FOODS = ("oat milk", "dark chocolate", "pickled ginger", "sparkling water", "green olives",
          "rye bread", "mango chutney", "goat cheese", "roasted almonds", "miso soup",
          "lemon sorbet", "black beans")
_ACTIVITIES = ("yoga", "bouldering", "rowing", "pottery", "salsa", "chess club", "choir",
               "tennis", "swimming laps", "Spanish class", "woodworking", "cycling")
_SERVICES = ("the electricity bill", "the phone contract", "the gym membership",
             "the car insurance", "the streaming subscription", "the parking permit",
             "the council tax", "the home insurance", "the water bill")
_TOPICS = ("a broken zip", "a squeaky door hinge", "a blocked sink", "a flat bike tyre",
           "a wobbly table", "a frozen laptop", "a stuck window", "a peeling sticker")
_STEPS = ("a drop of oil and patience", "hot water and washing soda", "a hair dryer on low",
          "sandpaper and a bit of wax", "holding the power button for ten seconds",
          "a spoon of baking soda and vinegar", "a plastic card and soapy water",
          "tightening the screws a quarter turn")
_FEELINGS = ("relieved", "exhausted but happy", "nervous", "proud", "homesick", "calm",
             "frustrated", "grateful")

_KNOWLEDGE = (
    "{name}'s birthday is on {month} {day}.",
    "{relation_cap} lives in {city} now.",
    "The code for the storage unit is {code}.",
    "{thing_cap} is kept {spot}.",
    "{relation_cap} is allergic to {food}.",
    "{service_cap} is due on the {day}th of every month.",
    "{name} prefers {food} over anything sweet.",
    "{place_cap} opens at {hour}:{minute} on {weekday}s.",
    "I lent {thing} to {name} in {month}.",
    "{name}'s phone number ends in {code}.",
    "{relation_cap} works as a nurse in {city}.",
    "{service_cap} costs {amount} euros a month.",
    "{name} and {name2} got married in {city} in {year}.",
    "The plumber's name is {name} and he charges {amount} euros per hour.",
)
_EXPERIENCE = (
    "In {month} {year} I visited {city} with {name} and it rained every day.",
    "I felt {feeling} after my first {activity} lesson.",
    "Last {weekday} I met {relation} at {place} by chance.",
    "I lost my keys at {place} in {year} and {name} found them.",
    "The trip to {city} in {year} was the first holiday I planned alone.",
    "I tried {activity} with {name} and hurt my wrist.",
    "I felt {feeling} when {relation} moved to {city}.",
    "My first job was at {place} in {city}, back in {year}.",
    "I ate too much {food} at {name}'s party and regretted it.",
    "Volunteering at {place} on {weekday}s made me feel {feeling}.",
)
_METHOD = (
    "To fix {topic} I use {step}.",
    "I pay {service} on {weekday}s so I never forget it.",
    "Before a long drive I check the tyres and pack {thing}.",
    "I keep a list of gift ideas for {name} in my notes app.",
    "For {activity} I warm up for {minutes} minutes first.",
    "When I shop at {place} I bring my own bags and a list.",
    "To fall asleep faster I read for {minutes} minutes without a screen.",
    "I water the plants on {weekday} and {weekday2} mornings.",
    "To save money I move {amount} euros to savings on the first of the month.",
    "I back up my laptop every {weekday} evening to {thing_plain}.",
    "When {relation} visits I book a table at {place} in advance.",
)
_TEMPLATES = {"knowledge": _KNOWLEDGE, "experience": _EXPERIENCE, "method": _METHOD}
# Roughly the mix of a real collection: facts most, then experiences, then methods.
_TYPE_SHARES = {"knowledge": 0.5, "experience": 0.3, "method": 0.2}


def _capital(text: str) -> str:
    return text[0].upper() + text[1:]


def _people_free(texts: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The names and relations distractors may use beside an evaluation set's `texts`: none
    the set names ("Ines") or refers to ("my brother", or "my wife" for a set's "spouse").
    A distractor "Ines's birthday is on September 26" would answer "When is Ines's
    birthday?" — recalling it is right, so it must not count as a false recall or a miss."""
    named = {re.sub(r"['’]s$", "", word) for text in texts for word in tokens(text)
             if word[:1].isupper()}
    words = {stem(word) for text in texts for word in re.findall(r"[a-z-]+", text.lower())}
    names = tuple(name for name in _NAMES if name not in named)

    def spoken_of(relation: str) -> bool:
        noun = relation.split()[-1]
        return any(stem(word) in words for word in same_person(noun))

    relations = tuple(relation for relation in _RELATIONS if not spoken_of(relation))
    if len(names) < 2 or not relations:
        raise ValueError("the evaluation set names nearly every person the distractor "
                         "templates know")
    return names, relations


def distractor_memories(count: int, seed: int = DISTRACTOR_SEED,
                        exclude: frozenset[str] = frozenset(),
                        spoken_of: Iterable[str] = ()) -> list[tuple[str, str]]:
    """`count` distinct (content, type) memories, the same for the same seed; none equal to
    a text in `exclude` (compared case- and space-insensitively), and none about a person
    the texts `spoken_of` name or refer to (see _people_free)."""
    rng = np.random.default_rng(seed)
    excluded = {" ".join(text.lower().split()) for text in exclude}
    names, relations = _people_free(list(spoken_of))
    types = list(_TYPE_SHARES)
    shares = list(_TYPE_SHARES.values())
    found: dict[str, str] = {}

    def pick(options: tuple) -> str:
        return options[rng.integers(len(options))]

    attempts = 0
    while len(found) < count:
        attempts += 1
        if attempts > 50 * count + 1000:
            raise ValueError(f"the templates cannot make {count} distinct memories")
        type = types[rng.choice(len(types), p=shares)]
        relation, thing, place, service = (pick(relations), pick(_THINGS), pick(_PLACES),
                                           pick(_SERVICES))
        content = pick(_TEMPLATES[type]).format(
            name=pick(names), name2=pick(names), relation=relation,
            relation_cap=_capital(relation), city=pick(_CITIES), place=place,
            place_cap=_capital(place), month=pick(_MONTHS), weekday=pick(_WEEKDAYS),
            weekday2=pick(_WEEKDAYS), day=int(rng.integers(1, 29)),
            year=int(rng.integers(1995, 2026)), code=f"{rng.integers(0, 10_000):04d}",
            hour=int(rng.integers(6, 11)), minute=pick(("00", "15", "30", "45")),
            amount=int(rng.integers(2, 120)) * 5, minutes=int(rng.integers(2, 9)) * 5,
            thing=thing, thing_cap=_capital(thing), thing_plain=thing.removeprefix("the "),
            spot=pick(_SPOTS), food=pick(_FOODS), activity=pick(_ACTIVITIES),
            service=service, service_cap=_capital(service), topic=pick(_TOPICS),
            step=pick(_STEPS), feeling=pick(_FEELINGS))
        if content not in found and " ".join(content.lower().split()) not in excluded:
            found[content] = type
    return list(found.items())


# -- running ------------------------------------------------------------------------------
Variant = Callable[[MemoryService, Any, str, np.ndarray], list[ScoredMemory]]


def _product(hybrid: bool, judged: bool = True) -> Variant:
    """MemoryService.recall exactly as the chat calls it, with hybrid_retrieval set
    (`judged` False: without the relevance score, the cosine threshold alone)."""
    def recall(service: MemoryService, conn: Any, text: str,
               vector: np.ndarray) -> list[ScoredMemory]:
        settings = service.settings
        previous = settings["hybrid_retrieval"]
        settings["hybrid_retrieval"] = hybrid
        try:
            return service.recall(conn, text, vector, k=settings["chat_memory_k"],
                                  threshold=settings["chat_memory_threshold"], judged=judged)
        finally:
            settings["hybrid_retrieval"] = previous
    return recall


def _hybrid(**options: Any) -> Variant:
    """retrieval.hybrid_search with other options than the product's."""
    def recall(service: MemoryService, conn: Any, text: str,
               vector: np.ndarray) -> list[ScoredMemory]:
        settings = service.settings
        return retrieval.hybrid_search(
            conn, text, vector, k=settings["chat_memory_k"],
            threshold=settings["chat_memory_threshold"], index=service.vector_index,
            **options)
    return recall


# name → retrieval; the first two are the product's two settings.
VARIANTS: dict[str, Variant] = {
    "vector only (hybrid_retrieval off)": _product(False),
    "hybrid: RRF, names, relevance score (default)": _product(True),
    "hybrid: RRF, names, cosine threshold only": _product(True, judged=False),
    "hybrid: RRF, every word (also words many memories share)": _hybrid(
        distinctive_words=False),
    "hybrid: RRF, keyword weight 0.5": _hybrid(keyword_weight=0.5),
}


class _Collection:
    """A fresh database with the real store, embedder service and vector index."""

    def __init__(self, workdir: Path, name: str, embedder: Any, settings: Mapping[str, Any],
                 runner: Callable | None):
        self.path = workdir / f"{name}.db"
        conn = db.connect(self.path)
        migrations.migrate(conn)
        self.conn = conn
        self.embeddings = EmbeddingService(cache=PersistentEmbeddingCache(self.path),
                                           embedder=embedder, memo_size=1024, runner=runner)
        self.index = VectorIndex(self.path, cache_dir=workdir / f"{name}-index")
        self.service = MemoryService(self.embeddings, dict(settings), self.index)

    def add(self, items: list[tuple[str, str]], batch: int = 512) -> list[int]:
        """Store (content, type) memories through the store, embedded in batches."""
        ids = []
        for start in range(0, len(items), batch):
            chunk = items[start:start + batch]
            vectors = self.embeddings.embed_many([content for content, _ in chunk])
            with db.transaction(self.conn):
                ids += [store.insert_memory(self.conn, content=content, type=type, tags=[],
                                            embedding=vector, source="eval").id
                        for (content, type), vector in zip(chunk, vectors)]
        self.index.refresh()
        return ids

    def close(self) -> None:
        self.index.close()
        self.conn.close()


def _ask(collection: _Collection, questions: list[EvalQuestion], vectors: np.ndarray,
         key_of: dict[int, str]) -> dict[str, list[list[str]]]:
    return {name: [[key_of.get(hit.memory.id, "") for hit in
                    variant(collection.service, collection.conn, question.question, vector)]
                   for question, vector in zip(questions, vectors)]
            for name, variant in VARIANTS.items()}


def _latencies(collection: _Collection, questions: list[EvalQuestion],
               vectors: np.ndarray) -> dict[str, dict]:
    timings: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(LATENCY_REPEATS):
        for question, vector in zip(questions, vectors):
            for name, variant in VARIANTS.items():  # interleaved: drift hits all alike
                started = time.perf_counter()
                variant(collection.service, collection.conn, question.question, vector)
                timings[name].append((time.perf_counter() - started) * 1000)
    return {name: {"p50_ms": float(np.percentile(samples, 50)),
                   "p95_ms": float(np.percentile(samples, 95))}
            for name, samples in timings.items()}


def run(paths: list[Path], *, embedder: Any, settings: Mapping[str, Any],
        distractors: int = DEFAULT_DISTRACTORS, seed: int = DISTRACTOR_SEED,
        runner: Callable | None = None, log: Callable[[str], None] = lambda line: None) -> dict:
    """Every variant on the retrieval files `paths` (one evaluation set), alone and with
    `distractors` generated memories (0: alone only). `embedder`: the app's embedder;
    `runner`: the thread that runs inference (engine.run_task), as in the app."""
    data = load_retrieval_set(paths)
    settings = dict(settings)
    result: dict[str, Any] = {
        "files": [str(path) for path in paths], "memories": len(data.memories),
        "questions": len(data.questions), "distractors": distractors, "seed": seed,
        "chat_memory_k": settings["chat_memory_k"],
        "chat_memory_threshold": settings["chat_memory_threshold"],
        "results": [], "no_answer": [], "latency": {}}
    items = [(memory.content, memory.type) for memory in data.memories]
    answers = [question.answers for question in data.questions]
    with tempfile.TemporaryDirectory(prefix="lumara-eval-") as tmp:
        workdir = Path(tmp)
        alone = _Collection(workdir, "alone", embedder, settings, runner)
        try:
            key_of = dict(zip(alone.add(items), (memory.key for memory in data.memories)))
            vectors = alone.embeddings.embed_many([q.question for q in data.questions])
            for name, ranked in _ask(alone, data.questions, vectors, key_of).items():
                result["results"].append({"variant": name, "distractors": 0,
                                          **retrieval_metrics(ranked, answers)})
        finally:
            alone.close()
        if not distractors:
            return result
        log(f"  generating and embedding {distractors:,} distractor memories")
        mixed = _Collection(workdir, "mixed", embedder, settings, runner)
        try:
            started = time.perf_counter()
            mixed.add(distractor_memories(
                distractors, seed, exclude=frozenset(content for content, _ in items),
                spoken_of=[*(content for content, _ in items),
                           *(question.question for question in data.questions)]))
            result["distractors_stored_s"] = round(time.perf_counter() - started, 1)
            # Before the answers are stored: anything recalled now cannot answer.
            for name, ranked in _ask(mixed, data.questions, vectors, {}).items():
                result["no_answer"].append({
                    "variant": name, "recalled_share":
                        sum(bool(keys) for keys in ranked) / len(ranked)})
            key_of = dict(zip(mixed.add(items), (memory.key for memory in data.memories)))
            for name, ranked in _ask(mixed, data.questions, vectors, key_of).items():
                result["results"].append({"variant": name, "distractors": distractors,
                                          **retrieval_metrics(ranked, answers)})
            result["latency"] = _latencies(mixed, data.questions, vectors)
            result["latency_size"] = distractors + len(items)
        finally:
            mixed.close()
    return result


def markdown(result: dict, title: str) -> str:
    """One evaluation set's tables (docs/BENCHMARKS.md, "Answer quality")."""
    lines = [f"### Retrieval: {title}", "",
             f"{result['questions']} questions over {result['memories']} memories; the chat's "
             f"retrieval (at most chat_memory_k = {result['chat_memory_k']} memories, each "
             f"with cosine ≥ chat_memory_threshold = {result['chat_memory_threshold']}).",
             "", "| Retrieval | Distractors | recall@1 | recall@5 | MRR |", "|---|---|---|---|---|"]
    for row in result["results"]:
        lines.append(f"| {row['variant']} | {row['distractors']:,} | {row['recall_at_1']:.3f} "
                     f"| {row['recall_at_5']:.3f} | {row['mrr']:.3f} |")
    if result["no_answer"]:
        lines += ["", f"With the {result['distractors']:,} distractors alone (no memory can "
                  "answer), the share of questions for which something was still recalled "
                  "(the chat would answer from it; lower is better): "
                  + "; ".join(f"{row['variant']} {row['recalled_share']:.2f}"
                              for row in result["no_answer"]) + "."]
    if result["latency"]:
        lines += ["", f"Retrieval time at {result['latency_size']:,} memories (question "
                  "already embedded; keyword query, vector search and fusion; "
                  f"{LATENCY_REPEATS} × {result['questions']} queries): "
                  + "; ".join(f"{name} p50 {row['p50_ms']:.2f} ms, p95 {row['p95_ms']:.2f} ms"
                              for name, row in result["latency"].items()) + "."]
    return "\n".join(lines) + "\n"


# -- the benchmark's "Answer quality" section ----------------------------------------------
ANSWER_QUALITY_HEADING = "## Answer quality"


def evaluate_dirs(dirs: list[Path], *, embedder: Any, settings: Mapping[str, Any],
                  distractors: int, engine_factory: Callable[[], Any] | None = None,
                  log: Callable[[str], None] = print) -> tuple[str, dict]:
    """Every evaluation set in `dirs` (each dir on its own: retrieval*.jsonl, pairs*.jsonl,
    intents*.jsonl and chat*.jsonl): the markdown section for docs/BENCHMARKS.md and the
    figures. The pairs half is pair_eval's, the chat's chat_eval's; when one is missing or
    fails, the others still run and the section says why it is absent. `engine_factory` loads
    the chat model for the pairs' model variants and the chat (called once, only when there
    are pairs or chats). Every chat file is checked before anything runs: a bad line is an
    error naming file:line, not a finding after minutes of work."""
    sections = [ANSWER_QUALITY_HEADING, "",
                f"Generated by `python -m lumara_bench --eval` on "
                f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Retrieval "
                "(evaluation.py): recall@k = share of questions with an answer among the "
                "first k memories the chat's retrieval returns (any answer id counts); "
                "MRR = mean 1/rank of the first answer (0 when none is returned). "
                "Distractors: generated personal memories (seeded templates in "
                "evaluation.py, never taken from the evaluation files).", ""]
    figures: dict[str, Any] = {"retrieval": {}, "pairs": {}, "intents": {}, "chat": {}}
    for directory in dirs:
        for path in sorted(Path(directory).glob("chat*.jsonl")):
            chat_eval.load_scenario(path)
    loaded: dict[str, Any] = {}

    def chat_engine() -> Any:
        """The chat model, loaded on first use; None when there is none (loaded["failure"]
        says why)."""
        if "engine" not in loaded:
            loaded["engine"], loaded["failure"] = None, "no chat engine"
            if engine_factory is not None:
                try:
                    loaded["engine"] = engine_factory()
                except Exception as failure:  # the evaluations without a model still run
                    loaded["failure"] = f"{type(failure).__name__}: {failure}"
                    log(f"  chat model unavailable ({loaded['failure']})")
        return loaded["engine"]

    for directory in dirs:
        retrieval_files = sorted(Path(directory).glob("retrieval*.jsonl"))
        pair_files = sorted(Path(directory).glob("pairs*.jsonl"))
        intent_files = sorted(Path(directory).glob("intents*.jsonl"))
        chat_files = sorted(Path(directory).glob("chat*.jsonl"))
        if not retrieval_files and not pair_files and not intent_files and not chat_files:
            raise _bad(f"{directory}: no retrieval*.jsonl, pairs*.jsonl, intents*.jsonl or "
                       "chat*.jsonl files to evaluate.")
        if intent_files:
            log(f"intents evaluation: {', '.join(map(str, intent_files))}")
            intents = intent_eval.run(intent_files)
            figures["intents"][str(directory)] = intents
            sections.append(intent_eval.markdown(intents))
        # Each retrieval file is a set of its own: a dev set and the one kept unseen while
        # tuning are reported apart.
        for path in retrieval_files:
            log(f"retrieval evaluation: {path}")
            result = run([path], embedder=embedder, settings=settings,
                         distractors=distractors, log=log)
            figures["retrieval"][str(path) if len(retrieval_files) > 1 else
                                 str(directory)] = result
            sections.append(markdown(result, f"`{path}`"))
        if pair_files:
            log(f"pairs evaluation: {', '.join(map(str, pair_files))}")
            try:
                from . import pair_eval

                # Without the model, the cue-only variants still run.
                pairs = pair_eval.run(pair_files, embeddings=embedder, engine=chat_engine())
                figures["pairs"][str(directory)] = pairs
                sections.append(pair_eval.markdown(pairs))
            except Exception as failure:  # reported: the retrieval half stands
                reason = f"{type(failure).__name__}: {failure}"
                log(f"  pairs evaluation unavailable ({reason})")
                figures["pairs"][str(directory)] = {"unavailable": reason}
                sections.append(f"### Pairs: {', '.join(f'`{path}`' for path in pair_files)}"
                                f"\n\nThe pairs evaluation is unavailable: {reason}.\n")
        if chat_files:
            log(f"chat evaluation: {', '.join(map(str, chat_files))}")
            try:
                engine = chat_engine()
                if engine is None:
                    raise chat_eval.ChatEvalUnavailable(loaded["failure"])
                chats = chat_eval.run(chat_files, components={"embedder": embedder,
                                                              "engine": engine},
                                      settings=settings, log=log)
                figures["chat"][str(directory)] = chats
                sections.append(chat_eval.markdown(chats))
            except chat_eval.ChatEvalUnavailable as failure:  # the other halves stand
                log(f"  chat evaluation unavailable ({failure})")
                figures["chat"][str(directory)] = {"unavailable": str(failure)}
                sections.append(f"### Chat: {', '.join(f'`{path}`' for path in chat_files)}"
                                f"\n\nThe chat evaluation is unavailable: {failure}.\n")
    return "\n".join(sections).rstrip() + "\n", figures


def replace_section(document: str, section: str, heading: str = ANSWER_QUALITY_HEADING) -> str:
    """`document` with its `heading` section (up to the next "## " heading) replaced by
    `section`, or with `section` appended when it has none."""
    start = document.find(heading + "\n")
    if start < 0:
        return document.rstrip("\n") + "\n\n" + section if document.strip() else section
    end = document.find("\n## ", start + len(heading))
    rest = document[end + 1:] if end >= 0 else ""
    return document[:start] + section.rstrip("\n") + "\n" + ("\n" + rest if rest else "")


def section_of(document: str, heading: str = ANSWER_QUALITY_HEADING) -> str | None:
    """The `heading` section of `document` (to the next "## " heading), if it has one."""
    start = document.find(heading + "\n")
    if start < 0:
        return None
    end = document.find("\n## ", start + len(heading))
    return document[start:end if end >= 0 else len(document)].rstrip("\n") + "\n"
