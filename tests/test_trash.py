"""Deletes are soft until purged: a deleted memory waits in the trash (deleted_memories) with
its vector, versions and links, and an undo puts it back whole under its own id. Store rules
on a real SQLite file, the /api/trash routes through Flask with the FakeEmbedder, and a
SIGKILL loop proving the move between memories and trash is one transaction."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone

import pytest

from lumara_web import create_app
from lumara_web.storage import db, review_store, store

from .fakes import FakeEmbedder
from .helpers import FACT, UNRELATED, add, result_ids, search

fake = FakeEmbedder()
OLD_TEXT = "the spare key hangs behind the blue door"
NEW_TEXT = "the spare key now sits under the red flowerpot"


def add_memory(conn, content, type="knowledge", tags=()):
    return store.insert_memory(conn, content=content, type=type, tags=list(tags),
                               embedding=fake.vector(content))


def vector_blob(conn, memory_id):
    row = conn.execute("SELECT embedding FROM memory_vectors WHERE memory_id = ?",
                       (memory_id,)).fetchone()
    return None if row is None else row[0]


def count(conn, table):
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def error_code(response):
    assert response.is_json, response.data
    return response.get_json()["error"]["code"]


def trash(client, **params):
    response = client.get("/api/trash", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def age_trash(conn, memory_id, days):
    """Pretend `memory_id` was deleted `days` days ago."""
    moment = datetime.now(timezone.utc) - timedelta(days=days)
    with db.transaction(conn):
        conn.execute("UPDATE deleted_memories SET deleted_at = ? WHERE id = ?",
                     (store.utc_timestamp(moment), memory_id))


# -- store ------------------------------------------------------------------------------
def test_delete_then_restore_keeps_id_content_timestamps_vector_and_versions(conn):
    memory = add_memory(conn, OLD_TEXT, "experience", ["home"])
    edited = store.update_memory(conn, memory.id, content=NEW_TEXT, tags=["home", "keys"],
                                 embedding=fake.vector(NEW_TEXT))
    versions = store.list_versions(conn, memory.id)
    blob = vector_blob(conn, memory.id)

    assert store.delete_memory(conn, memory.id) == edited
    assert store.get_memory(conn, memory.id) is None
    assert vector_blob(conn, memory.id) is None
    assert store.list_versions(conn, memory.id) == []  # cascaded away from memory_versions
    [trashed], total = store.list_deleted_memories(conn)
    assert total == 1 and trashed.memory == edited and trashed.version_count == 1

    assert store.restore_deleted_memory(conn, memory.id) == edited
    assert store.get_memory(conn, memory.id) == edited  # same id, created_at, updated_at
    assert vector_blob(conn, memory.id) == blob
    assert store.list_versions(conn, memory.id) == versions
    assert store.list_deleted_memories(conn) == ([], 0)
    assert store.restore_deleted_memory(conn, memory.id) is None  # only once


def test_search_does_not_find_a_deleted_memory_and_finds_it_restored(conn):
    memory = add_memory(conn, FACT)
    add_memory(conn, UNRELATED)
    store.delete_memory(conn, memory.id)
    hits = store.nearest_memories(conn, fake.vector(FACT), k=5)
    assert memory.id not in [hit.memory.id for hit in hits]

    store.restore_deleted_memory(conn, memory.id)
    top = store.nearest_memories(conn, fake.vector(FACT), k=1)[0]
    assert top.memory.id == memory.id and top.similarity == pytest.approx(1, abs=1e-3)


def test_ids_are_not_reused_and_restore_works_after_new_memories(conn):
    first = add_memory(conn, OLD_TEXT)
    store.delete_memory(conn, first.id)
    second = add_memory(conn, NEW_TEXT)
    assert second.id > first.id

    assert store.restore_deleted_memory(conn, first.id) == first
    items, total = store.list_memories(conn)
    assert total == 2 and [item.id for item in items] == [second.id, first.id]
    assert add_memory(conn, UNRELATED).id > second.id
    assert store.check_integrity(conn).problems() == []


def test_purge_one_and_purge_all(conn):
    memories = [add_memory(conn, f"note number {index}") for index in range(3)]
    for memory in memories:
        store.delete_memory(conn, memory.id)

    assert store.purge_deleted_memory(conn, memories[0].id) is True
    assert store.purge_deleted_memory(conn, memories[0].id) is False
    assert store.restore_deleted_memory(conn, memories[0].id) is None
    assert store.purge_trash(conn) == 2
    assert store.list_deleted_memories(conn) == ([], 0)
    assert count(conn, "memories") == 0 and count(conn, "memory_vectors") == 0


def test_auto_purge_deletes_only_what_is_older_than_the_setting(conn):
    old, recent = add_memory(conn, OLD_TEXT), add_memory(conn, NEW_TEXT)
    store.delete_memory(conn, old.id)
    store.delete_memory(conn, recent.id)
    age_trash(conn, old.id, days=31)
    age_trash(conn, recent.id, days=29)

    assert store.purge_trash_older_than(conn, 0) == 0  # 0 keeps everything
    assert store.purge_trash_older_than(conn, 30) == 1
    [kept], _ = store.list_deleted_memories(conn)
    assert kept.memory.id == recent.id


def test_trash_lists_most_recently_deleted_first_with_paging(conn):
    memories = [add_memory(conn, f"note number {index}") for index in range(3)]
    for memory in reversed(memories):  # the oldest memory is deleted last
        store.delete_memory(conn, memory.id)
        time.sleep(0.002)  # distinct millisecond timestamps

    items, total = store.list_deleted_memories(conn, limit=2)
    assert total == 3 and [item.memory.id for item in items] == [memories[0].id, memories[1].id]
    items, _ = store.list_deleted_memories(conn, limit=2, offset=2)
    assert [item.memory.id for item in items] == [memories[2].id]


def test_restore_relinks_suggestions_and_contradictions(conn):
    memory, other = add_memory(conn, OLD_TEXT), add_memory(conn, NEW_TEXT)
    suggestion = review_store.add_suggestion(conn, content=OLD_TEXT, type="knowledge", tags=[],
                                             confidence=0.9)
    review_store.settle_suggestion(conn, suggestion.id, "accepted", memory.id)
    contradiction = review_store.add_contradiction(
        conn, memory_id=other.id, existing_memory_id=memory.id, similarity=0.8,
        confidence=0.9, explanation="different places")

    store.delete_memory(conn, memory.id)
    assert review_store.get_suggestion(conn, suggestion.id).memory_id is None
    assert review_store.get_contradiction(conn, contradiction.id).existing_memory_id is None

    store.restore_deleted_memory(conn, memory.id)
    assert review_store.get_suggestion(conn, suggestion.id).memory_id == memory.id
    assert review_store.get_contradiction(conn, contradiction.id).existing_memory_id == memory.id


def test_collection_stats_counts_the_trash(conn):
    store.delete_memory(conn, add_memory(conn, OLD_TEXT).id)
    add_memory(conn, NEW_TEXT)
    stats = store.collection_stats(conn)
    assert (stats["memories"], stats["vectors"], stats["deleted_memories"]) == (1, 1, 1)


def fail_on_delete_from(conn, table):
    conn.execute(f"CREATE TEMP TRIGGER fail_{table} BEFORE DELETE ON {table}"
                 " BEGIN SELECT RAISE(ABORT, 'simulated failure'); END")


def test_a_delete_that_fails_half_way_changes_nothing(conn):
    memory = add_memory(conn, OLD_TEXT)
    fail_on_delete_from(conn, "memories")  # after the trash row and the vector delete
    with pytest.raises(Exception, match="simulated failure"):
        store.delete_memory(conn, memory.id)
    assert store.get_memory(conn, memory.id) == memory
    assert vector_blob(conn, memory.id) is not None
    assert count(conn, "deleted_memories") == 0


def test_a_restore_that_fails_half_way_changes_nothing(conn):
    memory = add_memory(conn, OLD_TEXT)
    store.delete_memory(conn, memory.id)
    fail_on_delete_from(conn, "deleted_memories")  # the restore's last write
    with pytest.raises(Exception, match="simulated failure"):
        store.restore_deleted_memory(conn, memory.id)
    assert store.get_memory(conn, memory.id) is None
    assert count(conn, "memory_vectors") == 0
    assert store.get_deleted_memory(conn, memory.id).memory == memory


# A child process deletes and restores the same memories as fast as it can; it is SIGKILLed
# at random moments. Whatever the moment, each memory is wholly in one place.
FLIPPER = textwrap.dedent("""
    import sys
    from lumara_web.storage import db, store
    conn = db.connect(sys.argv[1])
    ids = [int(i) for i in sys.argv[2:]]

    def flip():
        for memory_id in ids:
            if store.delete_memory(conn, memory_id) is None:
                store.restore_deleted_memory(conn, memory_id)

    flip()  # "ready" means it has written: the kill below always lands among writes
    print("ready", flush=True)
    while True:
        flip()
""")
KILLS = 8


def test_sigkill_never_leaves_a_memory_half_deleted(conn, tmp_path):
    memories = [add_memory(conn, f"note number {index} {OLD_TEXT}") for index in range(4)]
    for memory in memories:
        store.update_memory(conn, memory.id, tags=["edited"])  # one version each
    path = conn.execute("PRAGMA database_list").fetchone()[2]
    ids = [str(memory.id) for memory in memories]
    seq = store.memory_change_seq(conn)
    for kill in range(KILLS):
        child = subprocess.Popen([sys.executable, "-c", FLIPPER, path, *ids],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready"
            time.sleep(0.05 + 0.03 * kill)  # kills land at different points of the loop
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
        assert store.memory_change_seq(conn) > seq, "the child never got to write"
        seq = store.memory_change_seq(conn)
        for memory in memories:
            live, trashed = store.get_memory(conn, memory.id), store.get_deleted_memory(
                conn, memory.id)
            assert (live is None) != (trashed is None), f"memory {memory.id} after kill {kill}"
            if live is not None:
                assert vector_blob(conn, memory.id) is not None
                assert len(store.list_versions(conn, memory.id)) == 1
            else:
                assert trashed.version_count == 1
    assert store.check_integrity(conn).problems() == []


# -- API --------------------------------------------------------------------------------
def test_delete_answers_with_an_undo_that_restores_the_memory(client):
    memory = add(client, FACT)["memory"]
    body = client.delete(f"/api/memories/{memory['id']}").get_json()
    assert body["deleted"] == memory
    assert body["undo"] == {"method": "POST", "url": f"/api/trash/{memory['id']}/restore"}
    assert memory["id"] not in result_ids(search(client, q=FACT, k=10, threshold=-1))

    response = client.open(body["undo"]["url"], method=body["undo"]["method"])
    assert response.status_code == 201
    assert response.get_json() == {"memory": memory}
    assert client.get(f"/api/memories/{memory['id']}").get_json() == {"memory": memory}
    assert result_ids(search(client, q=FACT, k=1)) == [memory["id"]]

    second = client.post(f"/api/trash/{memory['id']}/restore")
    assert second.status_code == 404 and error_code(second) == "trash_item_not_found"


def test_a_restored_memory_gets_the_current_models_vector(client, app):
    """A vector kept in the trash from an embedding model replaced since (re-embeds skip
    the trash) is replaced on restore."""
    memory = add(client, FACT)["memory"]
    client.delete(f"/api/memories/{memory['id']}")
    conn = db.connect(app.extensions["lumara"].settings["db_path"])
    try:
        with db.transaction(conn):  # as if another model had made it
            conn.execute("UPDATE deleted_memories SET embedding = ?",
                         (store.vector_to_blob(fake.vector(UNRELATED)),))
    finally:
        conn.close()
    assert app.extensions["lumara"].embeddings.state == "ready"

    client.post(f"/api/trash/{memory['id']}/restore")
    [hit] = search(client, q=FACT, k=1)["results"]
    assert hit["memory"]["id"] == memory["id"]
    assert hit["similarity"] == pytest.approx(1, abs=1e-3)


def test_the_in_process_vector_index_follows_delete_and_undo(client, app, embedder):
    index = app.extensions["lumara"].memories.vector_index
    assert index.wait_ready(30)  # searches then go through the index, not sqlite-vec
    memory = add(client, FACT)["memory"]
    add(client, UNRELATED)
    client.delete(f"/api/memories/{memory['id']}")
    assert memory["id"] not in [hit[0] for hit in index.search(embedder.vector(FACT), k=5)]

    client.post(f"/api/trash/{memory['id']}/restore")
    assert index.search(embedder.vector(FACT), k=1)[0][0] == memory["id"]


def test_trash_lists_deleted_memories_with_when_and_pages(client):
    memories = [add(client, f"note number {index}")["memory"] for index in range(3)]
    for memory in memories:
        client.delete(f"/api/memories/{memory['id']}")
        time.sleep(0.002)

    body = trash(client, limit=2)
    assert body["total"] == 3 and body["limit"] == 2 and body["offset"] == 0
    assert body["trash_days"] == 30  # the default: the page says when they go for good
    assert [item["id"] for item in body["items"]] == [memories[2]["id"], memories[1]["id"]]
    first = body["items"][0]
    assert {key: first[key] for key in memories[2]} == memories[2]
    assert first["deleted_at"] >= memories[2]["updated_at"] and first["version_count"] == 0
    assert [item["id"] for item in trash(client, offset=2)["items"]] == [memories[0]["id"]]
    assert error_code(client.get("/api/trash?limit=0")) == "invalid_limit"


def test_purge_one_then_restore_or_purge_again_is_404(client):
    memory = add(client, FACT)["memory"]
    client.delete(f"/api/memories/{memory['id']}")

    response = client.delete(f"/api/trash/{memory['id']}")
    assert response.status_code == 200 and response.get_json() == {"purged": 1}
    assert error_code(client.post(f"/api/trash/{memory['id']}/restore")) == \
        "trash_item_not_found"
    assert error_code(client.delete(f"/api/trash/{memory['id']}")) == "trash_item_not_found"
    assert client.get(f"/api/memories/{memory['id']}").status_code == 404


def test_empty_trash_purges_all_and_leaves_memories(client):
    kept = add(client, UNRELATED)["memory"]
    for index in range(3):
        client.delete(f"/api/memories/{add(client, f'note number {index}')['memory']['id']}")

    assert client.delete("/api/trash").get_json() == {"purged": 3}
    assert trash(client)["total"] == 0
    assert client.delete("/api/trash").get_json() == {"purged": 0}
    assert client.get(f"/api/memories/{kept['id']}").status_code == 200


@pytest.mark.parametrize("method, url, status", [
    ("POST", "/api/trash/12345/restore", 404),
    ("DELETE", "/api/trash/12345", 404),
    ("POST", "/api/trash/9223372036854775808/restore", 404),  # beyond SQLite's integers
    ("DELETE", "/api/trash/9223372036854775808", 404),
])
def test_unknown_trash_ids_are_404_trash_item_not_found(client, method, url, status):
    response = client.open(url, method=method)
    assert response.status_code == status and error_code(response) == "trash_item_not_found"


@pytest.mark.parametrize("method, url", [
    ("POST", "/api/trash/abc/restore"), ("POST", "/api/trash/-1/restore"),
    ("DELETE", "/api/trash/1.5"), ("POST", "/api/trash/%D9%A3/restore"),  # Arabic-Indic 3
])
def test_malformed_trash_ids_are_json_404s(client, method, url):
    response = client.open(url, method=method)
    assert response.status_code == 404 and error_code(response) == "not_found"


def test_deleting_a_memory_twice_is_404_and_leaves_one_trash_item(client):
    memory = add(client, FACT)["memory"]
    client.delete(f"/api/memories/{memory['id']}")
    assert error_code(client.delete(f"/api/memories/{memory['id']}")) == "memory_not_found"
    assert trash(client)["total"] == 1


def test_start_up_purges_what_is_older_than_trash_days(tmp_path, embedder, engine):
    config = {"data_dir": str(tmp_path / "data"), "embedder": embedder, "engine": engine}
    client = create_app(dict(config)).test_client()
    old, recent = add(client, FACT)["memory"], add(client, UNRELATED)["memory"]
    for memory in (old, recent):
        client.delete(f"/api/memories/{memory['id']}")
    conn = db.connect(tmp_path / "data" / "lumara.db")
    try:
        age_trash(conn, old["id"], days=8)
        age_trash(conn, recent["id"], days=6)
    finally:
        conn.close()

    assert trash(create_app({**config, "trash_days": 0}).test_client())["total"] == 2
    restarted = create_app({**config, "trash_days": 7}).test_client()
    assert [item["id"] for item in trash(restarted)["items"]] == [recent["id"]]
