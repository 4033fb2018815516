"""Every edit keeps the previous version: GET /api/memories/<id>/history and
POST /api/memories/<id>/restore, end to end with the FakeEmbedder, plus the store rules
(versions written in the update's transaction, kept in the trash with a deleted memory)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from lumara_web.storage import db, store

from .fakes import FakeEmbedder
from .helpers import FACT, FACT_VARIANT, add, error_code, result_ids, search

OLD_TEXT = "alpha bravo charlie delta echo"
NEW_TEXT = "kilo lima mike november oscar"


def patch(client, memory_id, **fields):
    response = client.patch(f"/api/memories/{memory_id}", json=fields)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def history(client, memory_id):
    response = client.get(f"/api/memories/{memory_id}/history")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def restore(client, memory_id, version):
    return client.post(f"/api/memories/{memory_id}/restore", json={"version": version})


# -- history ----------------------------------------------------------------------------
def test_a_new_memory_has_no_versions(client):
    memory = add(client, OLD_TEXT)["memory"]
    assert history(client, memory["id"]) == {"memory": memory, "versions": []}


def test_edits_create_versions_in_order_listed_newest_first(client):
    memory = add(client, OLD_TEXT, type="experience", tags=["first"],
                 metadata={"from": "test"})["memory"]
    second = patch(client, memory["id"], content=NEW_TEXT)["memory"]
    third = patch(client, memory["id"], type="method")["memory"]

    body = history(client, memory["id"])

    assert list(body) == ["memory", "versions"]
    assert body["memory"] == third
    assert [v["version"] for v in body["versions"]] == [2, 1]
    newest, oldest = body["versions"]
    assert list(oldest) == ["version", "content", "type", "tags", "metadata", "replaced_at",
                            "change"]
    assert (oldest["content"], oldest["type"], oldest["tags"], oldest["metadata"]) == (
        OLD_TEXT, "experience", ["first"], {"from": "test"})
    assert (newest["content"], newest["type"]) == (NEW_TEXT, "experience")
    assert oldest["change"] == newest["change"] == "edit"
    # replaced_at is when the next state began: the update's own timestamp.
    assert oldest["replaced_at"] == second["updated_at"]
    assert newest["replaced_at"] == third["updated_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", oldest["replaced_at"])


def test_tags_only_edits_are_recorded(client, embedder):
    memory = add(client, OLD_TEXT, tags=["a"])["memory"]
    calls = len(embedder.calls)

    patch(client, memory["id"], tags=["b", "c"])

    [version] = history(client, memory["id"])["versions"]
    assert version["tags"] == ["a"] and version["content"] == OLD_TEXT
    assert len(embedder.calls) == calls  # no re-embedding for tags


def test_an_edit_that_changes_nothing_records_no_version(client):
    memory = add(client, OLD_TEXT, type="method", tags=["a"])["memory"]
    patch(client, memory["id"], content=OLD_TEXT, type="method", tags=["a"])
    assert history(client, memory["id"])["versions"] == []


# -- restore ----------------------------------------------------------------------------
def test_restore_brings_back_content_and_the_vector_follows(client):
    memory = add(client, OLD_TEXT, tags=["old"], metadata={"k": 1})["memory"]
    neighbour = add(client, f"{OLD_TEXT} foxtrot")["memory"]
    patch(client, memory["id"], content=NEW_TEXT, tags=["new"])
    assert result_ids(search(client, q=OLD_TEXT))[0] == neighbour["id"]

    response = restore(client, memory["id"], 1)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert list(body) == ["memory", "duplicates", "contradiction_candidates"]
    restored = body["memory"]
    assert (restored["content"], restored["tags"], restored["metadata"]) == (
        OLD_TEXT, ["old"], {"k": 1})
    assert restored["id"] == memory["id"] and restored["created_at"] == memory["created_at"]
    hits = search(client, q=OLD_TEXT)["results"]
    assert hits[0]["memory"]["id"] == memory["id"]
    assert hits[0]["similarity"] == pytest.approx(1, abs=1e-3)
    assert client.get(f"/api/memories/{memory['id']}").get_json() == {"memory": restored}


def test_the_in_process_vector_index_follows_a_restore(client, app, embedder):
    index = app.extensions["lumara"].memories.vector_index
    assert index.wait_ready(30)  # searches then go through the index, not sqlite-vec
    memory = add(client, OLD_TEXT)["memory"]
    neighbour = add(client, f"{OLD_TEXT} foxtrot")["memory"]
    patch(client, memory["id"], content=NEW_TEXT)
    assert index.search(embedder.vector(OLD_TEXT), k=1)[0][0] == neighbour["id"]

    assert restore(client, memory["id"], 1).status_code == 200

    [(top_id, similarity)] = index.search(embedder.vector(OLD_TEXT), k=1)
    assert top_id == memory["id"] and similarity == pytest.approx(1, abs=1e-3)


def test_restoring_is_recorded_and_can_itself_be_undone(client):
    memory = add(client, OLD_TEXT)["memory"]
    patch(client, memory["id"], content=NEW_TEXT)
    assert restore(client, memory["id"], 1).status_code == 200

    versions = history(client, memory["id"])["versions"]

    assert [(v["version"], v["content"], v["change"]) for v in versions] == [
        (2, NEW_TEXT, "restore"), (1, OLD_TEXT, "edit")]
    # Undo the restore: version 2 holds what it replaced.
    undone = restore(client, memory["id"], 2).get_json()["memory"]
    assert undone["content"] == NEW_TEXT
    assert result_ids(search(client, q=NEW_TEXT))[0] == memory["id"]
    assert [v["version"] for v in history(client, memory["id"])["versions"]] == [3, 2, 1]


def test_restore_reports_findings_like_patch(client):
    other = add(client, FACT)["memory"]
    memory = add(client, FACT_VARIANT)["memory"]
    patch(client, memory["id"], content=NEW_TEXT)

    body = restore(client, memory["id"], 1).get_json()

    [candidate] = body["contradiction_candidates"]
    assert candidate["memory"]["id"] == other["id"]
    assert body["duplicates"] == []


def test_restoring_a_tags_only_version_does_not_re_embed(client, embedder):
    memory = add(client, OLD_TEXT, tags=["a"])["memory"]
    patch(client, memory["id"], tags=["b"])
    calls = len(embedder.calls)

    restored = restore(client, memory["id"], 1).get_json()

    assert restored["memory"]["tags"] == ["a"]
    assert restored["duplicates"] == [] and restored["contradiction_candidates"] == []
    assert len(embedder.calls) == calls


# -- errors -----------------------------------------------------------------------------
def test_unknown_memory_is_404_for_both_routes(client):
    assert client.get("/api/memories/999/history").status_code == 404
    assert error_code(client.get("/api/memories/999/history")) == "memory_not_found"
    response = restore(client, 999, 1)
    assert response.status_code == 404 and error_code(response) == "memory_not_found"
    huge = 2**63  # beyond SQLite's range: refused before the view runs
    assert error_code(client.get(f"/api/memories/{huge}/history")) == "memory_not_found"
    assert error_code(restore(client, huge, 1)) == "memory_not_found"


def test_unknown_version_is_404_version_not_found(client):
    memory = add(client, OLD_TEXT)["memory"]
    for version in (1, 2**63 - 1):
        response = restore(client, memory["id"], version)
        assert response.status_code == 404
        assert error_code(response) == "version_not_found"
        assert f"version {version}" in response.get_json()["error"]["message"]
    assert history(client, memory["id"])["versions"] == []


@pytest.mark.parametrize("body, code", [
    ({}, "invalid_version"),
    ({"version": "1"}, "invalid_version"),
    ({"version": 1.5}, "invalid_version"),
    ({"version": True}, "invalid_version"),
    ({"version": None}, "invalid_version"),
    ({"version": 0}, "invalid_version"),
    ({"version": -1}, "invalid_version"),
    ({"version": 2**63}, "invalid_version"),
    ({"version": 1, "content": "x"}, "unknown_field"),
    ([1], "invalid_body"),
])
def test_bad_restore_bodies_are_400(client, body, code):
    memory = add(client, OLD_TEXT)["memory"]
    patch(client, memory["id"], content=NEW_TEXT)

    response = client.post(f"/api/memories/{memory['id']}/restore", json=body)

    assert response.status_code == 400, response.get_json()
    assert error_code(response) == code
    assert history(client, memory["id"])["memory"]["content"] == NEW_TEXT  # nothing changed


def test_restore_without_json_is_415(client):
    memory = add(client, OLD_TEXT)["memory"]
    response = client.post(f"/api/memories/{memory['id']}/restore", data="version=1")
    assert response.status_code == 415


# -- deletion ---------------------------------------------------------------------------
def test_deleting_a_memory_moves_its_versions_to_the_trash(client, app):
    memory = add(client, OLD_TEXT)["memory"]
    patch(client, memory["id"], content=NEW_TEXT)
    assert client.delete(f"/api/memories/{memory['id']}").status_code == 200

    assert error_code(client.get(f"/api/memories/{memory['id']}/history")) == "memory_not_found"
    assert error_code(restore(client, memory["id"], 1)) == "memory_not_found"
    conn = db.connect(app.extensions["lumara"].settings["db_path"])
    try:
        assert conn.execute("SELECT count(*) FROM memory_versions").fetchone()[0] == 0
    finally:
        conn.close()
    # Undoing the delete brings the history back with the memory.
    assert client.post(f"/api/trash/{memory['id']}/restore").status_code == 201
    versions = history(client, memory["id"])["versions"]
    assert [(v["version"], v["content"]) for v in versions] == [(1, OLD_TEXT)]


# -- store ------------------------------------------------------------------------------
fake = FakeEmbedder()


def test_a_rolled_back_update_leaves_no_version(conn):
    memory = store.insert_memory(conn, content=OLD_TEXT, type="knowledge", tags=[],
                                 embedding=fake.vector(OLD_TEXT))
    # Whitespace-only content breaks the CHECK after the version row was written.
    with pytest.raises(Exception, match="CHECK"):
        store.update_memory(conn, memory.id, content="   ", embedding=fake.vector("x"))
    # A wrong-width vector fails after the UPDATE itself.
    with pytest.raises(Exception, match="10 numbers; the database stores 384"):
        store.update_memory(conn, memory.id, content=NEW_TEXT,
                            embedding=np.ones(10, dtype=np.float32))

    assert store.list_versions(conn, memory.id) == []
    assert store.get_memory(conn, memory.id) == memory


def test_update_rejects_an_unknown_change_kind(conn):
    memory = store.insert_memory(conn, content=OLD_TEXT, type="knowledge", tags=[],
                                 embedding=fake.vector(OLD_TEXT))
    with pytest.raises(ValueError, match="change"):
        store.update_memory(conn, memory.id, tags=["x"], change="purge")
    assert store.list_versions(conn, memory.id) == []
