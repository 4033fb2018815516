import numpy as np
import pytest

from lumara_web.storage import store

from .fakes import FakeEmbedder

fake = FakeEmbedder()


def add(conn, content, memory_type="knowledge", tags=()):
    return store.insert_memory(conn, content=content, type=memory_type, tags=list(tags),
                               embedding=fake.vector(content))


def vector_count(conn):
    return conn.execute("SELECT count(*) FROM memory_vectors").fetchone()[0]


def test_insert_writes_memory_and_vector_together(conn):
    memory = add(conn, "My sister Ana lives in Lisbon.", "experience", ["family"])
    assert store.get_memory(conn, memory.id) == memory
    assert vector_count(conn) == 1
    assert store.integrity_problems(conn) == []


def test_failed_vector_write_leaves_no_memory(conn):
    # Refused in the transaction that wrote the memories row: nothing stays.
    with pytest.raises(Exception, match="10 numbers; the database stores 384"):
        store.insert_memory(conn, content="half written", type="knowledge", tags=[],
                            embedding=np.ones(10, dtype=np.float32))
    assert store.count_memories(conn) == 0
    assert vector_count(conn) == 0


def test_insert_many_keeps_order_dates_and_versions_or_writes_nothing(conn):
    old = store.MemoryVersion(version=1, content="Ana lived in Porto.", type="knowledge",
                              tags=[], metadata={}, replaced_at="2024-05-01T00:00:00.000Z",
                              change="edit")
    ids = store.insert_memories(conn, [
        store.NewStoredMemory("Ana lives in Lisbon.", "experience", ["family"],
                              fake.vector("Ana lives in Lisbon."), source="import",
                              created_at="2024-06-01T00:00:00.000Z", versions=(old,)),
        store.NewStoredMemory("I water the tomatoes.", "method", [],
                              fake.vector("I water the tomatoes."))])
    first, second = (store.get_memory(conn, memory_id) for memory_id in ids)
    assert ids[0] < ids[1] and (first.source, second.source) == ("import", "api")
    assert first.created_at == first.updated_at == "2024-06-01T00:00:00.000Z"
    assert store.list_versions(conn, ids[0]) == [old] and vector_count(conn) == 2
    assert store.integrity_problems(conn) == []

    with pytest.raises(Exception, match="10 numbers; the database stores 384"):
        store.insert_memories(conn, [
            store.NewStoredMemory("fine", "knowledge", [], fake.vector("fine")),
            store.NewStoredMemory("too short", "knowledge", [], np.ones(10, np.float32))])
    assert store.count_memories(conn) == 2 and vector_count(conn) == 2


def test_nearest_is_ordered_by_similarity_and_filters_by_type(conn):
    add(conn, "alpha beta gamma delta", "knowledge")
    add(conn, "alpha beta gamma omega", "method")
    add(conn, "unrelated words entirely here", "knowledge")
    hits = store.nearest_memories(conn, fake.vector("alpha beta gamma delta"), k=3)
    assert [hit.memory.content for hit in hits][:2] == ["alpha beta gamma delta",
                                                        "alpha beta gamma omega"]
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert hits == sorted(hits, key=lambda hit: -hit.similarity)
    methods = store.nearest_memories(conn, fake.vector("alpha beta gamma delta"), k=3,
                                     type="method")
    assert [hit.memory.type for hit in methods] == ["method"]


def test_update_content_replaces_the_vector(conn):
    memory = add(conn, "old words about cats")
    updated = store.update_memory(conn, memory.id, content="new words about boats",
                                  embedding=fake.vector("new words about boats"))
    assert updated.content == "new words about boats"
    assert updated.updated_at >= memory.updated_at
    best = store.nearest_memories(conn, fake.vector("new words about boats"), k=1)[0]
    assert best.memory.id == memory.id and best.similarity == pytest.approx(1.0, abs=1e-5)
    assert vector_count(conn) == 1


def test_update_type_keeps_the_vector_and_moves_the_type_filter(conn):
    memory = add(conn, "steep coffee for sixteen hours", "knowledge")
    store.update_memory(conn, memory.id, type="method")
    hits = store.nearest_memories(conn, fake.vector("steep coffee for sixteen hours"), k=1,
                                  type="method")
    assert hits[0].memory.id == memory.id
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert store.nearest_memories(conn, fake.vector("steep coffee"), k=1, type="knowledge") == []


def test_content_cannot_change_without_its_embedding(conn):
    memory = add(conn, "something")
    with pytest.raises(ValueError):
        store.update_memory(conn, memory.id, content="something else")
    assert store.get_memory(conn, memory.id).content == "something"


def test_delete_removes_memory_and_vector_and_ids_are_never_reused(conn):
    first = add(conn, "to be forgotten")
    assert store.delete_memory(conn, first.id) == first
    assert store.get_memory(conn, first.id) is None
    assert vector_count(conn) == 0
    assert store.delete_memory(conn, first.id) is None
    assert add(conn, "next one").id > first.id


def test_list_is_newest_first_with_filters_and_total(conn):
    for index in range(5):
        add(conn, f"memory number {index}", "method" if index % 2 else "knowledge",
            ["even"] if index % 2 == 0 else ["odd"])
    items, total = store.list_memories(conn, limit=2)
    assert total == 5
    assert [m.content for m in items] == ["memory number 4", "memory number 3"]
    items, total = store.list_memories(conn, tag="odd")
    assert total == 2 and {m.content for m in items} == {"memory number 1", "memory number 3"}
    items, total = store.list_memories(conn, type="knowledge", offset=1, limit=10)
    assert total == 3 and [m.content for m in items] == ["memory number 2", "memory number 0"]


def test_embedding_cache_round_trips_per_model(conn):
    vector = fake.vector("cached text")
    store.put_cached_embeddings(conn, "model-a", [(b"d" * 32, vector)])
    store.put_cached_embeddings(conn, "model-a", [(b"d" * 32, vector)])  # idempotent
    found = store.get_cached_embeddings(conn, "model-a", [b"d" * 32, b"x" * 32])
    assert list(found) == [b"d" * 32]
    np.testing.assert_array_equal(found[b"d" * 32], vector)
    assert store.get_cached_embeddings(conn, "model-b", [b"d" * 32]) == {}


def test_integrity_problems_reports_orphans(conn):
    memory = add(conn, "paired")
    conn.execute("DELETE FROM memory_vectors WHERE memory_id = ?", (memory.id,))
    assert store.integrity_problems(conn) == ["1 memories have no vector"]
