"""Hybrid retrieval (retrieval.hybrid_search): the vector ranking fused with the FTS5 keyword
ranking by reciprocal rank, under the similarity threshold; used by the chat, the OpenAI
chat endpoint and the search box."""

from __future__ import annotations

import numpy as np
import pytest

from lumara_web.memory.validation import NewMemory
from lumara_web.search import retrieval
from lumara_web.search.vector_index import VectorIndex
from lumara_web.storage import db, migrations, store

from .fakes import FakeEngine
from .test_vector_index import every_candidate_rescored  # noqa: F401 (autouse fixture)

QUERY = np.random.default_rng(1).standard_normal(384).astype(np.float32)
QUERY /= np.linalg.norm(QUERY)


def at_cosine(cosine: float, seed: int) -> np.ndarray:
    """A unit vector whose cosine with QUERY is exactly `cosine`."""
    other = np.random.default_rng(1000 + seed).standard_normal(384)  # not QUERY's seed
    other -= (other @ QUERY) * QUERY
    other /= np.linalg.norm(other)
    return (cosine * QUERY + np.sqrt(1 - cosine ** 2) * other).astype(np.float32)


def add(conn, content: str, cosine: float, seed: int, type: str = "knowledge"):
    return store.insert_memory(conn, content=content, type=type, tags=[],
                               embedding=at_cosine(cosine, seed))


@pytest.fixture
def collection(conn):
    """25 memories close to the query by meaning but without its rare word, and one that
    has the word but that the vector ranking puts 26th."""
    close = [add(conn, f"Note {n} about the weekly plan and errands.", 0.80 - n * 0.01, n)
             for n in range(25)]
    target = add(conn, "The penicillin allergy card is in my wallet.", 0.45, 100)
    return close, target


@pytest.fixture(params=["no index", "exact", "ivf"])
def index(request, tmp_path, conn):
    if request.param == "no index":
        yield None
        return
    vector_index = VectorIndex(tmp_path / "lumara.db", cache_dir=tmp_path / "index",
                               exact_limit=10 if request.param == "ivf" else 50_000)
    vector_index.refresh()
    yield vector_index
    vector_index.close()


def ids(hits) -> list[int]:
    return [hit.memory.id for hit in hits]


def test_fusion_lifts_an_exact_keyword_match_the_vector_ranking_puts_low(conn, collection,
                                                                         index):
    close, target = collection
    if index is not None:
        index.refresh()
    text = "Where is my penicillin card?"
    vector_only = retrieval.search(conn, QUERY, k=5, threshold=0.3, index=index)
    assert target.id not in ids(vector_only)
    hybrid = retrieval.hybrid_search(conn, text, QUERY, k=5, threshold=0.3, index=index)
    # First by words ties with first by meaning (1 / (RRF_K + 1) each): the closer wins.
    assert ids(hybrid) == [close[0].id, target.id, *(memory.id for memory in close[1:4])]
    # Its similarity is its true cosine, though the vector candidates never held it.
    assert hybrid[1].similarity == pytest.approx(0.45, abs=1e-4)


def test_a_type_filter_applies_to_both_rankings(conn, collection):
    close, target = collection
    method = add(conn, "Penicillin: ask the pharmacist for the card.", 0.40, 200, "method")
    hits = retrieval.hybrid_search(conn, "penicillin card", QUERY, k=5, threshold=0.3,
                                   type="method")
    assert ids(hits) == [method.id]
    hits = retrieval.hybrid_search(conn, "penicillin card", QUERY, k=5, threshold=0.3,
                                   type="knowledge")
    assert target.id in ids(hits) and method.id not in ids(hits)


def test_keyword_hits_below_the_threshold_are_never_returned(conn, collection):
    _, target = collection
    hits = retrieval.hybrid_search(conn, "penicillin", QUERY, k=5, threshold=0.5)
    assert target.id not in ids(hits)
    assert all(hit.similarity >= 0.5 for hit in hits)


def test_a_memory_holding_a_name_the_question_names_has_a_lower_floor(conn):
    ines = add(conn, "My cousin Ines lives in Valencia and teaches chemistry.", 0.34, 1)
    add(conn, "The chemistry set is in the attic.", 0.34, 2)  # a shared word, not a name
    add(conn, "Ines painted the fence.", 0.2, 3)  # the name, but far in meaning
    hits = retrieval.hybrid_search(conn, "What subject does Ines teach in chemistry?", QUERY,
                                   k=5, threshold=0.35)
    assert ids(hits) == [ines.id]
    assert retrieval.hybrid_search(conn, "what chemistry subject does she teach", QUERY,
                                   k=5, threshold=0.35) == []


def test_nothing_above_the_threshold_means_nothing_found(conn):
    add(conn, "The penicillin allergy card is in my wallet.", 0.10, 1)
    assert retrieval.hybrid_search(conn, "penicillin card wallet", QUERY, k=5,
                                   threshold=0.35) == []


def test_text_without_keywords_gives_the_vector_ranking(conn, collection):
    vector_only = retrieval.search(conn, QUERY, k=5, threshold=0.3)
    assert ids(retrieval.hybrid_search(conn, "what is it?", QUERY, k=5,
                                       threshold=0.3)) == ids(vector_only)


def test_reciprocal_rank_fusion_scores():
    scores = retrieval.reciprocal_rank_fusion([([1, 2, 3], 1.0), ([3, 4], 0.5)])
    k = retrieval.RRF_K
    assert scores == pytest.approx({1: 1 / (k + 1), 2: 1 / (k + 2),
                                    3: 1 / (k + 3) + 0.5 / (k + 1), 4: 0.5 / (k + 2)})


# -- the chat, the OpenAI endpoint and the search box use it ------------------------------
# Bag-of-words fake vectors: "When is the dinner?" shares three of the question's five words
# (cosine ≈ 0.6); the Zorblat memory shares only the rare word (cosine ≈ 0.15), so by
# meaning alone the dinner wins the single slot, and by words the Zorblat memory does.
# (Written lower-case: a question naming someone a memory names is answered from those
# memories alone, test_chat.py; here only the retrieval is tested.)
QUESTION = "When is the zorblat meeting?"
NEAR_BY_MEANING = "When is the dinner?"
NEAR_BY_WORD = "Zorblat moved to Oslo last year with friends."


def app_with(make_app, engine, hybrid: bool):
    app = make_app(engine=engine, hybrid_retrieval=hybrid, chat_memory_k=1,
                   chat_memory_threshold=0.05, chat_memory_relevance=0.05,
                   search_threshold=0.05)
    services = app.extensions["lumara"]
    conn = db.connect(services.settings["db_path"])
    for content in (NEAR_BY_MEANING, NEAR_BY_WORD):
        services.memories.add(conn, NewMemory(content=content, type="knowledge", tags=[],
                                              metadata={}))
    return app, services, conn


@pytest.mark.parametrize("hybrid, expected", [(True, NEAR_BY_WORD), (False, NEAR_BY_MEANING)])
def test_the_chat_uses_hybrid_retrieval_unless_turned_off(make_app, hybrid, expected):
    engine = FakeEngine()
    app, services, conn = app_with(make_app, engine, hybrid)
    try:
        events = list(services.chat.turn(conn, services.chat.parse_request(
            {"content": QUESTION})))
        receipt = next(event["items"] for event in events if event["type"] == "memories")
        assert [item["content"] for item in receipt] == [expected]
        prompt = [r for r in engine.requests if r.purpose == "chat"][-1].messages
        assert expected in str(prompt)

        client = app.test_client()
        completion = client.post("/v1/chat/completions", json={
            "messages": [{"role": "user", "content": QUESTION}]}).get_json()
        assert [m["content"] for m in completion["lumara"]["memories"]] == [expected]

        search = client.get("/api/memories/search", query_string={"q": QUESTION, "k": 1})
        assert search.status_code == 200
        assert [hit["memory"]["content"] for hit in search.get_json()["results"]] == [expected]
    finally:
        conn.close()


def test_the_search_box_keeps_its_type_filter(make_app):
    engine = FakeEngine()
    app, services, conn = app_with(make_app, engine, True)
    conn.close()
    response = app.test_client().get("/api/memories/search", query_string={
        "q": QUESTION, "type": "method"})
    assert response.status_code == 200
    assert response.get_json()["results"] == []


@pytest.mark.parametrize("text", ['"', "NEAR(", "*", "AND", "-x:y^", "()"])
def test_nasty_search_text_is_answered_not_a_500(client, text):
    response = client.get("/api/memories/search", query_string={"q": text})
    assert response.status_code == 200


# -- on the real embedding model --------------------------------------------------------
def test_on_the_real_model_a_rare_name_is_found_and_unrelated_words_are_not(
        tmp_path, real_embedder, real_engine):
    conn = db.connect(tmp_path / "real.db")
    migrations.migrate(conn)
    try:
        contents = [
            "My colleague Brandt prefers meetings before lunch.",
            "My colleague from marketing prefers video calls.",
            "My colleague from finance prefers long emails.",
            "My colleague in support prefers chat messages.",
            "My colleague at the front desk prefers phone calls.",
            "The river bank floods every spring.",
        ]
        vectors = real_engine.run_task(lambda: real_embedder.embed(contents))
        memories = [store.insert_memory(conn, content=content, type="knowledge", tags=[],
                                        embedding=vector)
                    for content, vector in zip(contents, vectors)]
        question = "What does Brandt prefer?"
        query = real_engine.run_task(lambda: real_embedder.embed([question]))[0]
        hits = retrieval.hybrid_search(conn, question, query, k=2, threshold=0.35)
        assert ids(hits)[0] == memories[0].id
        by_id = {memory.id: vector for memory, vector in zip(memories, vectors)}
        for hit in hits:  # the similarity reported is the real cosine
            assert hit.similarity == pytest.approx(float(by_id[hit.memory.id] @ query),
                                                   abs=1e-3)
        # "bank" shares a word with the question but not its meaning: below the threshold.
        bank_question = "How do I call my bank?"
        bank_query = real_engine.run_task(lambda: real_embedder.embed([bank_question]))[0]
        assert float(vectors[5] @ bank_query) < 0.35
        bank_hits = retrieval.hybrid_search(conn, bank_question, bank_query, k=5,
                                            threshold=0.35)
        assert memories[5].id not in ids(bank_hits)
    finally:
        conn.close()


def test_the_cosine_of_memories_asked_for_comes_from_the_index_or_sqlite_vec(conn, collection,
                                                                           index):
    close, target = collection
    wanted = [target.id, close[3].id, 999_999]  # the last exists nowhere: left out
    expected = {target.id: 0.45, close[3].id: 0.77}
    assert store.memory_similarities(conn, QUERY, wanted) == pytest.approx(expected, abs=1e-4)
    if index is not None:
        assert index.similarities(QUERY, wanted) == pytest.approx(expected, abs=1e-4)


def test_a_memory_quoted_word_for_word_comes_first_whatever_the_keywords_say(
        conn, index, monkeypatch):
    """Rank fusion alone puts `echo` first: second by meaning, first by words, while the
    quoted memory is first by meaning but only seventh by words (a long text)."""
    quoted = add(conn, "Zebra quokka sightings were logged on the long walk along the "
                 "northern ridge trail with the hiking group.", 0.99, 1)
    echo = add(conn, "Zebra zebra quokka quokka.", 0.90, 2)
    for n in range(5):
        add(conn, "Zebra quokka.", 0.40 - n * 0.01, 10 + n)
    if index is not None:
        index.refresh()
    hits = retrieval.hybrid_search(conn, "zebra quokka", QUERY, k=5, threshold=0.3,
                                   index=index)
    assert ids(hits)[:2] == [quoted.id, echo.id]
    monkeypatch.setattr(retrieval, "QUOTED_SIMILARITY", 1.01)  # rank fusion alone
    hits = retrieval.hybrid_search(conn, "zebra quokka", QUERY, k=5, threshold=0.3,
                                   index=index)
    assert ids(hits)[0] == echo.id
