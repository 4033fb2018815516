"""Top-k search over the memories. `search`: by vector alone (memory findings: duplicates
and contradiction candidates). `hybrid_search`: the vector ranking fused with the keyword
ranking (keyword_index.py) — what the chat and the search box use.

Fusion is reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): a memory scores
Σ weight / (RRF_K + rank) over the rankings it appears in. It needs no calibration between
a cosine and a BM25 score (which live on unrelated scales and shift with the collection),
and a memory ranked well by both beats one ranked first by only one.

The threshold rule: a memory is returned only if its cosine similarity to the query is at
least `threshold` (a keyword-only hit's cosine is computed from its stored vector), or, when
it holds a name the query names, at least `threshold` − NAME_SLACK: "What subject does Ines
teach?" is 0.34 from "My cousin Ines lives in Valencia and teaches chemistry". Keywords can
reorder the relevant memories and bring in one the vector top-k missed, but not an unrelated
memory that happens to share a word: when nothing is near enough, the chat still says it has
no memory of it.

The chat asks for more (`admit`): a memory's relevance score (relevance.py) — how far it
stands above the question's other near memories, and the words and names it shares — must
also reach the setting chat_memory_relevance, and the vector ranking is by that score. The
people a question refers to are searched by their names too (`expansion`, aliases.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..storage import store
from ..storage.store import ScoredMemory
from ..text import content_words, names_in
from . import keyword_index, relevance
from .vector_index import VectorIndex

# Candidates each ranking offers the fusion (at least k): deep enough that a memory the
# vector ranking puts 6th–20th can be lifted into a top 5 by its words; each keyword
# candidate outside the vector ones costs one vector lookup.
FUSION_CANDIDATES = 20
# The RRF constant from the paper (60): it flattens the head of each ranking, so one
# ranking's first place does not outweigh agreement between the two.
RRF_K = 60
# Weight of the keyword ranking against the vector ranking (1.0: plain RRF).
KEYWORD_WEIGHT = 1.0
# Cosine at which the query is the memory's own text, give or take a word or punctuation
# (MiniLM: rewordings of one fact score 0.64–0.95, a copy with one number changed ~0.87).
QUOTED_SIMILARITY = 0.95
# How much lower the cosine floor is for a memory that holds a name the query names (a
# person's name is what a question about them shares with their memory; the rest of the
# words may differ: "What subject does Ines teach?" / "… Ines … teaches chemistry").
NAME_SLACK = 0.1


def search(conn: Any, query_vector: np.ndarray, *, k: int, threshold: float,
           type: str | None = None, index: VectorIndex | None = None) -> list[ScoredMemory]:
    """The k nearest memories whose cosine similarity is at least `threshold`, best first.

    With an `index`, the in-process vector index answers (it first applies every committed
    change); without one, or while it is still loading, sqlite-vec's KNN does."""
    found = _nearest(conn, query_vector, k=k, type=type, index=index)
    found = [(memory_id, similarity) for memory_id, similarity in found
             if similarity >= threshold]
    return _scored(conn, found)


def hybrid_search(conn: Any, text: str, query_vector: np.ndarray, *, k: int,
                  threshold: float, type: str | None = None, index: VectorIndex | None = None,
                  keyword_weight: float = KEYWORD_WEIGHT,
                  distinctive_words: bool = True,
                  expansion: tuple[str, np.ndarray] | None = None,
                  people: dict[str, frozenset[str]] | None = None,
                  admit: float | None = None) -> list[ScoredMemory]:
    """Up to k memories for the query `text` (whose embedding is `query_vector`), by
    reciprocal rank fusion of the vector and keyword rankings; each has cosine similarity
    ≥ `threshold` (see the module docstring), reported as its similarity.
    `expansion`: the query with the names of the people it refers to (search/aliases.py)
    and its embedding, searched beside it (a memory's cosine is the better of the two).
    `admit`: also require that relevance score (search/relevance.py), and rank by it;
    `people`: the question's person words and their names (aliases.people_in).
    `keyword_weight` and `distinctive_words` (False: every word counts) are for the
    evaluation's comparison of variants."""
    pool = max(k, FUSION_CANDIDATES)
    vectors = [query_vector] + ([expansion[1]] if expansion else [])
    nearest = _nearest(conn, query_vector, k=pool, type=type, index=index)
    floor_of = relevance.background([cosine for _, cosine in nearest])
    similarity = dict(nearest)
    if expansion:
        for memory_id, cosine in _nearest(conn, expansion[1], k=pool, type=type, index=index):
            similarity[memory_id] = max(cosine, similarity.get(memory_id, -np.inf))
    by_vector = list(similarity)
    # Only words at most `pool` memories share: more would tie for every keyword place.
    keyword_ids = [memory_id for memory_id, _ in keyword_index.search(
        conn, expansion[0] if expansion else text, limit=pool, type=type,
        max_matches=pool if distinctive_words else None)]
    missing = [memory_id for memory_id in keyword_ids if memory_id not in similarity]
    for vector in vectors:
        for memory_id, cosine in _similarities(conn, vector, missing, index).items():
            similarity[memory_id] = max(cosine, similarity.get(memory_id, -np.inf))
    named = _naming(conn, names_in(text), [memory_id for memory_id in keyword_ids
                                 if threshold - NAME_SLACK <= similarity.get(
                                     memory_id, -np.inf) < threshold])
    passing = {memory_id for memory_id, cosine in similarity.items()
               if cosine >= threshold - (NAME_SLACK if memory_id in named else 0.0)}
    strength = similarity
    if admit is not None:
        question = relevance.Question.of(text, people or {})
        contents = store.contents_by_id(conn, sorted(passing))
        strength = {memory_id: relevance.score(question, content, similarity[memory_id],
                                               floor_of)
                    for memory_id, content in contents.items()}
        # On top of the threshold: relevance only keeps out, never lets in below it.
        passing = {memory_id for memory_id in passing
                   if strength.get(memory_id, -np.inf) >= admit}
    rankings = [
        (sorted((memory_id for memory_id in by_vector if memory_id in passing),
                key=lambda memory_id: -strength.get(memory_id, -np.inf)), 1.0),
        ([memory_id for memory_id in keyword_ids if memory_id in passing], keyword_weight),
    ]
    fused = reciprocal_rank_fusion(rankings)
    # A memory quoted (nearly) word for word comes first: rank fusion weighs ranks, not
    # how close, and a keyword ranking left with only common words or numbers (the
    # distinctive ones filtered out) could otherwise push it below a near-namesake.
    # Equal fused scores (first by one ranking, first by the other): the closer memory wins.
    best = sorted(fused, key=lambda memory_id: (similarity[memory_id] < QUOTED_SIMILARITY,
                                                -fused[memory_id],
                                                -strength.get(memory_id, -np.inf)))
    return _scored(conn, [(memory_id, similarity[memory_id]) for memory_id in best[:k]])


def _naming(conn: Any, names: set[str], ids: list[int]) -> set[int]:
    """The memories of `ids` that hold one of `names` (lower-case) as a word."""
    if not names or not ids:
        return set()
    return {memory_id for memory_id, memory in store.memories_by_id(conn, ids).items()
            if names & content_words(memory.content)}


def holding_names(conn: Any, names: set[str], *, limit: int) -> list[int]:
    """Up to `limit` memories holding one of `names` as a word (the keyword index finds
    candidates; its stemmer would also match "ines" to "in", so the words are checked)."""
    ids = [memory_id for memory_id, _ in keyword_index.search(
        conn, " ".join(sorted(names)), limit=max(limit, FUSION_CANDIDATES))]
    return sorted(_naming(conn, names, ids))[:limit]


def keyword_search(conn: Any, text: str, query_vector: np.ndarray, *, limit: int,
                   index: VectorIndex | None = None) -> list[ScoredMemory]:
    """The memories that share `text`'s distinctive words, best match first, each with its
    cosine similarity whatever it is: for findings, where a shared subject ("my team lead")
    is evidence even when the sentences' meanings are far apart."""
    keyword_ids = [memory_id for memory_id, _ in keyword_index.search(
        conn, text, limit=limit, max_matches=limit)]
    similarity = _similarities(conn, query_vector, keyword_ids, index)
    return _scored(conn, [(memory_id, similarity[memory_id]) for memory_id in keyword_ids
                          if memory_id in similarity])


def _similarities(conn: Any, query_vector: np.ndarray, ids: list[int],
                  index: VectorIndex | None) -> dict[int, float]:
    if not ids:
        return {}
    scored = index.similarities(query_vector, ids) if index is not None else None
    if scored is None and len(query_vector) != store.vector_width(conn):
        return {}
    if scored is None:  # no index, or still loading
        scored = store.memory_similarities(conn, query_vector, ids)
    return dict(scored)


def reciprocal_rank_fusion(rankings: list[tuple[list[int], float]]) -> dict[int, float]:
    """Each id's fused score from (ranking best first, weight) pairs."""
    scores: dict[int, float] = {}
    for ranking, weight in rankings:
        for rank, memory_id in enumerate(ranking, start=1):
            scores[memory_id] = scores.get(memory_id, 0.0) + weight / (RRF_K + rank)
    return scores


def _nearest(conn: Any, query_vector: np.ndarray, *, k: int, type: str | None,
             index: VectorIndex | None) -> list[tuple[int, float]]:
    found = index.search(query_vector, k=k, type=type) if index is not None else None
    if found is None and len(query_vector) != store.vector_width(conn):
        return []  # the model changed width; its re-embed has not stored a vector yet
    if found is None:
        return [(hit.memory.id, hit.similarity)
                for hit in store.nearest_memories(conn, query_vector, k=k, type=type)]
    return found


def _scored(conn: Any, found: list[tuple[int, float]]) -> list[ScoredMemory]:
    # Rows come from the caller's connection: a memory deleted since the index last looked
    # is absent there, and so never returned.
    memories = store.memories_by_id(conn, [memory_id for memory_id, _ in found])
    return [ScoredMemory(memories[memory_id], similarity)
            for memory_id, similarity in found if memory_id in memories]
