"""The import as a background job (POST /api/import → 202, GET /api/import[/<id>]) with the
fakes on a real SQLite file: its phases and progress, one import at a time (409), a bad file
refused before anything starts, the server answering meanwhile, and all or nothing when the
write fails."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from lumara_web.memory import transfer
from lumara_web.storage import store

from .helpers import WAIT, add, import_document, snapshot

# Distinct words in each: the fake (bag-of-words) embedder finds no two near-duplicates.
MANY = [{"content": f"imported w{i}x w{i}y w{i}z"} for i in range(12)]


def export_from_another_model(memories: list[dict]) -> dict:
    """A file whose vectors (none here) are not the running model's: every memory is
    embedded, so the import goes through all three phases."""
    return {"format": "lumara-export", "version": 1, "embedding_model": "someone/else",
            "dimensions": 384, "memories": memories}


def status(client, path: str = "/api/import") -> dict:
    response = client.get(path)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.fixture
def gate(monkeypatch):
    """Holds the import job at one progress report until the test lets it go on."""
    class Gate:
        def __init__(self):
            self.release = threading.Event()
            self.waiting = threading.Event()

        def hold(self, app, phase: str, done: int):
            job = app.extensions["lumara"].import_job
            job.batch = 2  # texts embedded at a time: several reports per phase
            report = job._report

            def held(at_phase, at_done, total):
                report(at_phase, at_done, total)
                if (at_phase, at_done) == (phase, done):
                    self.waiting.set()
                    assert self.release.wait(WAIT), "the test never released the import"
            monkeypatch.setattr(job, "_report", held)
            monkeypatch.setattr(transfer, "REPORT_EVERY", 2)

        def start_held(self, app, client, document, phase: str, done: int) -> dict:
            self.hold(app, phase, done)
            response = client.post("/api/import", json=document)
            assert response.status_code == 202, response.get_json()
            assert self.waiting.wait(WAIT), "the import never reached the held point"
            return response.get_json()

    gate = Gate()
    yield gate
    gate.release.set()


def finished(app) -> None:
    thread = app.extensions["lumara"].import_job.thread
    thread.join(WAIT)
    assert not thread.is_alive(), "the import did not finish"


@pytest.mark.parametrize("phase", ["embedding", "checking", "writing"])
def test_each_phase_reports_its_progress_then_the_result(make_app, gate, phase):
    app = make_app()
    client = app.test_client()
    started = gate.start_held(app, client, export_from_another_model(MANY), phase, 4)
    assert started["state"] == "running" and started["memories"] == 12
    assert started["status_url"] == f"/api/import/{started['id']}"

    now = status(client, started["status_url"])
    assert (now["state"], now["phase"], now["done"], now["total"]) == ("running", phase, 4, 12)
    assert now["memories_per_s"] > 0 and now["result"] is None
    assert status(client) == now  # GET /api/import: the running (or last) import
    assert client.get("/health").get_json()["import"] == now
    gate.release.set()
    finished(app)

    done = status(client, started["status_url"])
    assert done["state"] == "done" and done["finished_at"] and done["memories_per_s"] > 0
    assert done["result"] == {"imported": 12, "skipped_duplicates": [], "reembedded": True}
    assert sorted(memory.content for memory in _stored(app)) == sorted(
        memory["content"] for memory in MANY)


def test_a_second_import_while_one_runs_is_refused_then_allowed(make_app, gate):
    app = make_app()
    client = app.test_client()
    first = gate.start_held(app, client, export_from_another_model(MANY), "checking", 4)
    before = snapshot(app)

    refused = client.post("/api/import", json=export_from_another_model([{"content": "x y"}]))
    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert error["code"] == "import_running"
    assert error["message"].startswith("An import is already running (checking: 4 of 12)")
    assert first["status_url"] in error["message"]
    assert snapshot(app) == before and status(client)["id"] == first["id"]

    gate.release.set()
    finished(app)
    second = import_document(client, export_from_another_model([{"content": "lone words"}]))
    assert second["imported"] == 1
    assert status(client)["id"] == first["id"] + 1
    assert client.get(f"/api/import/{first['id']}").status_code == 404  # only the last is kept


def test_a_bad_file_is_refused_at_once_and_changes_nothing(make_app, gate):
    app = make_app()
    client = app.test_client()
    add(client, "a memory from before")
    before = snapshot(app)
    bad = export_from_another_model([*MANY, {"content": "fine", "tags": "not a list"}])

    response = client.post("/api/import", json=bad)
    assert response.status_code == 400
    assert response.get_json()["error"]["message"].startswith("memories[12]: ")
    assert status(client)["state"] == "idle"  # no job was started
    assert snapshot(app) == before

    # Checked before the one-at-a-time rule: a bad file during an import is still a 400.
    gate.start_held(app, client, export_from_another_model(MANY), "embedding", 2)
    assert client.post("/api/import", json=bad).status_code == 400


def test_the_server_answers_and_takes_memories_while_an_import_runs(make_app, gate):
    app = make_app()
    client = app.test_client()
    add(client, "lighthouse keeper paints the railing")
    gate.start_held(app, client, export_from_another_model(MANY), "checking", 4)

    found = client.get("/api/memories/search", query_string={"q": "lighthouse railing"})
    assert found.status_code == 200
    assert found.get_json()["results"][0]["memory"]["content"].startswith("lighthouse")
    add(client, "grandmother bakes rye bread")  # no write lock is held before the writing
    assert client.get("/api/memories").get_json()["total"] == 2  # none imported yet
    gate.release.set()
    finished(app)
    assert client.get("/api/memories").get_json()["total"] == 14


def without_cached_embeddings(app) -> dict:
    """The database but the embedding cache (the import's embedding fills it, as a search's
    does: a cache, not data)."""
    return {table: rows for table, rows in snapshot(app).items() if table != "embedding_cache"}


def test_a_failed_write_imports_nothing_and_says_why(make_app, monkeypatch):
    app = make_app()
    client = app.test_client()
    add(client, "a memory from before")
    before = without_cached_embeddings(app)
    insert = store.insert_memories
    calls = []

    def disk_fails_on_the_second_chunk(conn, memories):
        calls.append(1)
        if len(calls) == 2:
            raise sqlite3.OperationalError("disk I/O error")
        return insert(conn, memories)
    monkeypatch.setattr(store, "insert_memories", disk_fails_on_the_second_chunk)
    monkeypatch.setattr(transfer, "REPORT_EVERY", 4)  # memories written at a time

    response = client.post("/api/import", json=export_from_another_model(MANY))
    assert response.status_code == 202
    finished(app)
    failed = status(client)
    assert failed["state"] == "failed" and failed["phase"] == "writing"
    assert "disk I/O error" in failed["error"] and "Nothing was imported" in failed["error"]
    assert failed["result"] is None
    # The four written before the failure were rolled back.
    assert without_cached_embeddings(app) == before

    monkeypatch.setattr(store, "insert_memories", insert)
    assert import_document(client, export_from_another_model(MANY))["imported"] == 12


def test_the_status_of_an_unknown_import_is_a_404(client):
    assert status(client) == {**status(client), "state": "idle", "id": None,
                              "status_url": None}
    response = client.get("/api/import/7")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "import_not_found"


def _stored(app) -> list:
    conn = app.extensions["lumara"].connect()
    try:
        return transfer.all_memories(conn)
    finally:
        conn.close()
