"""The in-process vector index: same answers as brute force, and always in step with SQLite
(writes through the store, other connections, rollbacks, concurrent searches)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from lumara_web.search import retrieval, vector_index
from lumara_web.search.vector_index import VectorIndex
from lumara_web.storage import db, migrations, store

from .fakes import FakeEmbedder

TYPES = ("knowledge", "experience", "method")


def clustered(count: int, seed: int) -> np.ndarray:
    """Unit vectors around 40 fixed random centres: neighbours mean something (random
    gaussian vectors are all about equally far apart)."""
    centres = np.random.default_rng(0).standard_normal((40, 384))
    rng = np.random.default_rng(seed)
    vectors = centres[rng.integers(0, 40, count)] + 0.6 * rng.standard_normal((count, 384))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def fill(conn, vectors: np.ndarray) -> list[int]:
    return [store.insert_memory(conn, content=f"memory {i}", type=TYPES[i % 3], tags=[],
                                embedding=vector).id for i, vector in enumerate(vectors)]


def fill_fast(conn, vectors: np.ndarray) -> None:
    """Memories 1..n with these vectors, written in one transaction (store.insert_memory
    one at a time takes minutes at 20,000)."""
    now = store.utc_now()
    with db.transaction(conn):
        conn.executemany(
            "INSERT INTO memories (id, content, type, tags, created_at, updated_at, source,"
            " metadata) VALUES (?, ?, ?, '[]', ?, ?, 'test', '{}')",
            [(i + 1, f"memory {i}", TYPES[i % 3], now, now) for i in range(len(vectors))])
        conn.executemany(
            "INSERT INTO memory_vectors (memory_id, embedding, type) VALUES (?, ?, ?)",
            [(i + 1, store.vector_to_blob(vector), TYPES[i % 3])
             for i, vector in enumerate(vectors)])


def brute_force(conn, query: np.ndarray, k: int, type: str | None = None) -> list[int]:
    ids, blobs, types = store.memory_vector_states(
        conn, [row[0] for row in conn.execute("SELECT id FROM memories")])
    matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(-1, 384)
    scores = matrix @ query / np.linalg.norm(matrix, axis=1) / np.linalg.norm(query)
    order = [i for i in np.argsort(-scores) if type is None or types[i] == type]
    return [ids[i] for i in order[:k]]


@pytest.fixture(autouse=True)
def every_candidate_rescored(monkeypatch):
    """The IVF tests here run on a few hundred memories, too few to train 8-bit codes:
    rescoring every candidate makes their answers exact, so they test the index's
    bookkeeping. test_ivf_recall_at_a_realistic_size tests the codes themselves."""
    monkeypatch.setattr(vector_index, "RESCORE_CANDIDATES", 10_000)


@pytest.fixture
def index(tmp_path, conn):
    vector_index = VectorIndex(tmp_path / "lumara.db", cache_dir=tmp_path / "index")
    yield vector_index
    vector_index.close()


@pytest.fixture
def ivf_index(tmp_path, conn):
    vector_index = VectorIndex(tmp_path / "lumara.db", cache_dir=tmp_path / "index",
                               exact_limit=100)
    yield vector_index
    vector_index.close()


def ids_of(hits) -> list[int]:
    return [hit.memory.id for hit in hits]


def test_exact_layout_matches_brute_force(conn, index):
    vectors = clustered(600, seed=1)
    fill(conn, vectors)
    index.refresh()
    assert index.stats()["layout"] == "exact"
    for query in clustered(20, seed=2):
        hits = retrieval.search(conn, query, k=10, threshold=-1.0, index=index)
        assert ids_of(hits) == brute_force(conn, query, 10)
        # Cosine similarity, as sqlite-vec reports it (1 - cosine distance).
        raw = store.nearest_memories(conn, query, k=10)
        assert [hit.similarity for hit in hits] == pytest.approx(
            [hit.similarity for hit in raw], abs=1e-5)


def test_ivf_layout_finds_the_same_neighbours(conn, ivf_index):
    fill(conn, clustered(3000, seed=3))
    ivf_index.refresh()
    assert ivf_index.stats()["layout"] == "ivf"
    found = expected = 0
    for query in clustered(30, seed=4):
        hits = ids_of(retrieval.search(conn, query, k=10, threshold=-1.0, index=ivf_index))
        exact = brute_force(conn, query, 10)
        assert hits[0] == exact[0]
        found += len(set(hits) & set(exact))
        expected += len(exact)
    assert found / expected >= 0.95


@pytest.mark.parametrize("layout", ["exact", "ivf"])
def test_type_filter(conn, index, ivf_index, layout):
    chosen = index if layout == "exact" else ivf_index
    fill(conn, clustered(1200, seed=5))
    for query in clustered(5, seed=6):
        for type in TYPES:
            hits = retrieval.search(conn, query, k=10, threshold=-1.0, type=type, index=chosen)
            assert len(hits) == 10 and {hit.memory.type for hit in hits} == {type}
            assert ids_of(hits)[:3] == brute_force(conn, query, 3, type)
    assert retrieval.search(conn, query, k=10, threshold=-1.0, type="unknown",
                            index=chosen) == []


def test_threshold_and_unnormalized_vectors(conn, index):
    vector = clustered(1, seed=7)[0]
    memory = store.insert_memory(conn, content="scaled", type="knowledge", tags=[],
                                 embedding=3.0 * vector)
    fill(conn, clustered(50, seed=8))
    hits = retrieval.search(conn, vector, k=5, threshold=0.99, index=index)
    assert ids_of(hits) == [memory.id] and hits[0].similarity == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("layout", ["exact", "ivf"])
def test_store_writes_are_seen_by_the_next_search(conn, index, ivf_index, layout):
    chosen = index if layout == "exact" else ivf_index
    fake = FakeEmbedder()
    fill(conn, clustered(300, seed=9))
    chosen.refresh()

    def best(text: str, type: str | None = None):
        hits = retrieval.search(conn, fake.vector(text), k=1, threshold=-1.0, type=type,
                                index=chosen)
        return hits[0] if hits else None

    memory = store.insert_memory(conn, content="cold brew steeps sixteen hours",
                                 type="method", tags=[],
                                 embedding=fake.vector("cold brew steeps sixteen hours"))
    assert best("cold brew steeps sixteen hours").memory.id == memory.id

    store.update_memory(conn, memory.id, content="the boat is blue",
                        embedding=fake.vector("the boat is blue"))
    assert best("the boat is blue").memory.id == memory.id
    assert best("cold brew steeps sixteen hours").similarity < 0.5

    store.update_memory(conn, memory.id, type="knowledge")
    assert best("the boat is blue", type="knowledge").memory.id == memory.id
    assert best("the boat is blue", type="method").memory.id != memory.id

    store.delete_memory(conn, memory.id)
    hits = retrieval.search(conn, fake.vector("the boat is blue"), k=400, threshold=-1.0,
                            index=chosen)
    assert memory.id not in ids_of(hits) and len(hits) == 300


def test_rolled_back_writes_are_never_seen(conn, index):
    fake = FakeEmbedder()
    fill(conn, clustered(100, seed=10))
    index.refresh()
    vector = fake.vector("a secret that was never saved")
    with pytest.raises(RuntimeError):
        with db.transaction(conn):
            store.insert_memory(conn, content="a secret that was never saved",
                                type="knowledge", tags=[], embedding=vector)
            # Searching inside the transaction: the index reads committed data only.
            assert retrieval.search(conn, vector, k=1, threshold=0.99, index=index) == []
            raise RuntimeError("roll back")
    assert retrieval.search(conn, vector, k=1, threshold=0.99, index=index) == []
    # The rolled-back change's log position is used again by the next commit: applied.
    kept = store.insert_memory(conn, content="kept", type="knowledge", tags=[],
                               embedding=fake.vector("kept"))
    assert ids_of(retrieval.search(conn, fake.vector("kept"), k=1, threshold=0.99,
                                   index=index)) == [kept.id]


def test_writes_from_another_connection_are_seen(tmp_path, conn, index):
    fake = FakeEmbedder()
    fill(conn, clustered(100, seed=11))
    index.refresh()
    other = db.connect(tmp_path / "lumara.db")
    try:
        memory = store.insert_memory(other, content="written elsewhere", type="experience",
                                     tags=[], embedding=fake.vector("written elsewhere"))
        hits = retrieval.search(conn, fake.vector("written elsewhere"), k=1, threshold=0.99,
                                index=index)
        assert ids_of(hits) == [memory.id]
        store.delete_memory(other, memory.id)
        assert retrieval.search(conn, fake.vector("written elsewhere"), k=1, threshold=0.99,
                                index=index) == []
    finally:
        other.close()


def test_a_memory_deleted_after_the_index_looked_is_not_returned(tmp_path, conn, index):
    ids = fill(conn, clustered(50, seed=12))
    index.refresh()
    query = clustered(1, seed=12)[0]
    first = index.search(query, k=1)[0][0]
    # Deleted behind the index's back between its answer and the row fetch: the rows come
    # from the caller's connection, so the deleted memory is dropped.
    conn.execute("DELETE FROM memory_vectors WHERE memory_id = ?", (first,))
    conn.execute("DELETE FROM memories WHERE id = ?", (first,))
    hits = retrieval.search(conn, query, k=len(ids), threshold=-1.0, index=index)
    assert first not in ids_of(hits) and len(hits) == len(ids) - 1


def test_searches_during_writes_never_fail(tmp_path, conn, ivf_index):
    path = tmp_path / "lumara.db"
    fill(conn, clustered(400, seed=13))
    ivf_index.refresh()
    queries = clustered(20, seed=14)
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        writer = db.connect(path)
        try:
            rng = np.random.default_rng(15)
            for step, vector in enumerate(clustered(150, seed=16)):
                memory = store.insert_memory(writer, content=f"new {step}",
                                             type=TYPES[step % 3], tags=[], embedding=vector)
                victim = int(rng.integers(1, memory.id))
                if step % 3 == 0:
                    store.delete_memory(writer, victim)
                elif step % 3 == 1:
                    store.update_memory(writer, victim, content=f"edited {step}",
                                        embedding=vector)
        except BaseException as error:
            errors.append(error)
        finally:
            writer.close()
            done.set()

    def search() -> None:
        reader = db.connect(path)
        try:
            step = 0
            while not done.is_set():
                query = queries[step % len(queries)]
                hits = retrieval.search(reader, query, k=10, threshold=-1.0,
                                        type=TYPES[step % 3] if step % 2 else None,
                                        index=ivf_index)
                assert len({hit.memory.id for hit in hits}) == len(hits)
                step += 1
        except BaseException as error:
            errors.append(error)
        finally:
            reader.close()

    threads = [threading.Thread(target=write)] + [threading.Thread(target=search)
                                                  for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    # Afterwards the index holds exactly what SQLite holds.
    ivf_index.refresh()
    assert ivf_index.stats()["size"] == store.count_memories(conn)
    for query in queries[:5]:
        hits = retrieval.search(conn, query, k=5, threshold=-1.0, index=ivf_index)
        best = brute_force(conn, query, 1)[0]
        # (Updates copy new memories' vectors, so two memories can tie for the top.)
        assert hits[0].memory.id == best or hits[0].similarity == pytest.approx(
            ivf_index.similarities(query, [best])[best], abs=1e-6)


def test_change_log_is_pruned_and_a_lagging_index_reloads(conn, index):
    ids = fill(conn, clustered(20, seed=17))
    index.refresh()
    # 20,000+ logged changes: at every CHANGE_LOG_KEEP-th the trigger prunes the older ones.
    with db.transaction(conn):
        for step in range(2 * migrations.CHANGE_LOG_KEEP + 5):
            conn.execute("UPDATE memories SET updated_at = ? WHERE id = ?",
                         (str(step), ids[step % len(ids)]))
    kept = conn.execute("SELECT count(*) FROM memory_changes").fetchone()[0]
    pruned = conn.execute("SELECT through_seq FROM memory_changes_pruned").fetchone()[0]
    assert kept < 2 * migrations.CHANGE_LOG_KEEP and pruned > index.stats()["seq"]
    store.delete_memory(conn, ids[0])
    # The index cannot catch up from the log: it reloads (sqlite-vec answers meanwhile).
    index.refresh()
    hits = retrieval.search(conn, clustered(1, seed=17)[0], k=50, threshold=-1.0, index=index)
    assert sorted(ids_of(hits)) == ids[1:]


def test_grows_into_ivf_in_the_background_and_keeps_serving(tmp_path, conn):
    vector_index = VectorIndex(tmp_path / "lumara.db", cache_dir=tmp_path / "index",
                               exact_limit=500)
    fill(conn, clustered(450, seed=18))
    vector_index.refresh()
    assert vector_index.stats()["layout"] == "exact"
    fill(conn, clustered(200, seed=19))
    query = clustered(1, seed=20)[0]
    # This search still uses the exact layout (with the new memories) and starts the build.
    assert ids_of(retrieval.search(conn, query, k=1, threshold=-1.0,
                                   index=vector_index)) == brute_force(conn, query, 1)
    assert vector_index.wait_ready(60)
    vector_index.refresh()
    stats = vector_index.stats()
    assert stats["layout"] == "ivf" and stats["size"] == 650
    assert list((tmp_path / "index").glob("ivf*.faiss")), "the trained centroids are saved"
    vector_index.close()

    # A new process reuses the saved centroids instead of training again.
    restarted = VectorIndex(tmp_path / "lumara.db", cache_dir=tmp_path / "index",
                            exact_limit=500)
    restarted.refresh()
    assert restarted.stats()["trained_size"] == stats["trained_size"]
    assert ids_of(retrieval.search(conn, query, k=1, threshold=-1.0,
                                   index=restarted)) == brute_force(conn, query, 1)
    restarted.close()


def test_searches_fall_back_to_sqlite_vec_while_loading(tmp_path, conn, index):
    fill(conn, clustered(30, seed=21))
    query = clustered(1, seed=21)[0]
    started = threading.Event()
    release = threading.Event()
    real_load = index._load_snapshot

    def slow_load(connection):
        started.set()
        release.wait(10)
        return real_load(connection)

    index._load_snapshot = slow_load
    index.start_loading()
    assert started.wait(10)
    assert index.search(query, k=3) is None  # still loading
    assert ids_of(retrieval.search(conn, query, k=3, threshold=-1.0, index=index)) == \
        ids_of(store.nearest_memories(conn, query, k=3))
    release.set()
    assert index.wait_ready(10)
    assert index.search(query, k=3) is not None


def test_the_app_searches_through_its_index(app, client):
    services = app.extensions["lumara"]
    assert isinstance(services.memories.vector_index, VectorIndex)
    assert services.memories.vector_index.wait_ready(10)
    created = client.post("/api/memories", json={"content": "My sister Ana lives in Lisbon.",
                                                 "type": "experience"}).get_json()
    found = client.get("/api/memories/search", query_string={"q": "My sister Ana lives in Lisbon."})
    results = found.get_json()["results"]
    assert results[0]["memory"]["id"] == created["memory"]["id"]
    assert results[0]["similarity"] == pytest.approx(1.0, abs=1e-4)


def test_ivf_recall_at_a_realistic_size(tmp_path, conn):
    """20,000 memories with 8-bit codes, the default candidates: the top 10 found are the
    true top 10 for at least 95 % of them (exact rescoring: every score is the cosine)."""
    vectors = clustered(20_000, seed=30)
    fill_fast(conn, vectors)
    index = VectorIndex(tmp_path / "lumara.db", cache_dir=tmp_path / "index",
                        exact_limit=10_000)
    try:
        index.refresh()
        assert index.stats()["layout"] == "ivf"
        queries = clustered(50, seed=31)
        recall = []
        for query in queries:
            found = index.search(query, k=10)
            truth = np.argsort(-(vectors @ query))[:10] + 1  # ids start at 1
            recall.append(len({memory_id for memory_id, _ in found} & set(truth.tolist())))
            assert [score for _, score in found] == pytest.approx(
                (vectors[[memory_id - 1 for memory_id, _ in found]] @ query).tolist(),
                abs=1e-5)
        assert sum(recall) / (10 * len(queries)) >= 0.95
    finally:
        index.close()
