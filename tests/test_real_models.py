"""Integration tests on the real bundled all-MiniLM-L6-v2 and a real SQLite file."""

import pytest

from lumara_web import create_app

UNRELATED = [
    "I am allergic to penicillin; it gave me a rash in 2019.",
    "To make cold brew I steep 100 g of coarse coffee in 1 litre of water for 16 hours.",
    "My passport expires in March 2028.",
    "My manager Priya prefers written status updates on Fridays.",
    "The car needs an oil change every 15,000 kilometres.",
    "When debugging flaky tests I first re-run them with a fixed random seed.",
    "Our apartment lease renews every September.",
    "I felt calmer after a week without checking social media.",
]


class CountingEmbedder:
    """The real model, with a record of every text it was asked to embed."""

    def __init__(self, inner):
        self.inner = inner
        self.model_id = inner.model_id
        self.dimensions = inner.dimensions
        self.texts: list[str] = []

    def embed(self, texts):
        self.texts.extend(texts)
        return self.inner.embed(texts)


@pytest.fixture
def minilm(real_embedder):
    return real_embedder


@pytest.fixture
def make_client(real_engine):
    """An app on the real embedder; the session's one real engine runs its inference."""
    def make(data_dir, embedder):
        return create_app({"data_dir": str(data_dir), "embedder": embedder,
                           "engine": real_engine}).test_client()
    return make


def test_paraphrased_question_finds_the_memory_first(tmp_path, minilm, make_client):
    client = make_client(tmp_path, minilm)
    for content in UNRELATED[:4] + ["My sister Ana lives in Lisbon."] + UNRELATED[4:]:
        assert client.post("/api/memories", json={"content": content}).status_code == 201
    question = {"q": "Where does my sister live?"}
    default = client.get("/api/memories/search", query_string=question).get_json()["results"]
    assert default[0]["memory"]["content"] == "My sister Ana lives in Lisbon."
    everything = client.get("/api/memories/search",
                            query_string={**question, "threshold": -1, "k": 20}).get_json()
    ranked = everything["results"]
    assert len(ranked) == len(UNRELATED) + 1
    assert ranked[0]["memory"]["content"] == "My sister Ana lives in Lisbon."
    assert ranked[0]["similarity"] > ranked[1]["similarity"]


def test_reworded_duplicate_is_flagged_and_unrelated_is_not(tmp_path, minilm, make_client):
    client = make_client(tmp_path, minilm)
    for content in UNRELATED:
        client.post("/api/memories", json={"content": content})
    original = client.post("/api/memories",
                           json={"content": "My sister Ana lives in Lisbon."}).get_json()
    assert original["duplicates"] == []
    check = client.post("/api/memories/check",
                        json={"content": "Ana, my sister, is living in Lisbon."}).get_json()
    assert [hit["memory"]["id"] for hit in check["duplicates"]] == [original["memory"]["id"]]
    assert check["duplicates"][0]["similarity"] >= 0.85
    unrelated = client.post("/api/memories/check",
                            json={"content": "I bought new running shoes."}).get_json()
    assert unrelated == {"duplicates": [], "contradiction_candidates": []}


def test_persistent_cache_is_hit_after_a_restart(tmp_path, minilm, make_client):
    first_run = CountingEmbedder(minilm)
    make_client(tmp_path, first_run).post("/api/memories",
                                          json={"content": "The spare key is with the neighbour."})
    assert first_run.texts == ["The spare key is with the neighbour."]

    second_run = CountingEmbedder(minilm)  # a new process would start with an empty memo
    client = make_client(tmp_path, second_run)
    found = client.get("/api/memories/search",
                       query_string={"q": "The spare key is with the neighbour."}).get_json()
    assert found["results"][0]["similarity"] == pytest.approx(1.0, abs=1e-4)
    assert second_run.texts == []
    counters = client.get("/health").get_json()["embedder"]["counters"]
    assert counters["cache_hits"] == 1 and counters["computed"] == 0
