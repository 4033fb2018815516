"""Start-up checks the database: a memory without its vector, a vector without its memory
and a damaged page are reported (the app still starts, /health and the page say what is
wrong and what to do); a file SQLite cannot open stops `python app.py` with a message that
names the file and what to do."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lumara_bench.server import fill_memories, free_port
from lumara_web import create_app
from lumara_web.storage import db, migrations, store

from .fakes import FakeEmbedder, FakeEngine
from .live_server import PROJECT_ROOT, AppProcess

PAGE_BYTES = 4096  # SQLite's default page size, which Lumara keeps


def make_database(path: Path, contents: list[str]) -> list[store.Memory]:
    embedder = FakeEmbedder()
    conn = db.connect(path)
    try:
        migrations.migrate(conn)
        return [store.insert_memory(conn, content=content, type="knowledge", tags=[],
                                    embedding=embedder.vector(content)) for content in contents]
    finally:
        conn.close()


def execute(path: Path, sql: str, params: tuple = ()) -> None:
    conn = db.connect(path)
    try:
        conn.execute(sql, params)
    finally:
        conn.close()


def start(tmp_path: Path, db_path: Path):
    app = create_app({"data_dir": str(tmp_path / "data"), "db_path": str(db_path),
                      "embedder": FakeEmbedder(), "engine": FakeEngine()})
    return app.test_client()


def test_a_large_database_is_checked_after_the_server_answers(tmp_path, monkeypatch):
    """Above INTEGRITY_SYNC_BYTES the check reads the whole file after start-up (at
    1,000,000 memories it takes seconds): /health answers at once, says the check has not
    run yet, then reports what it found."""
    from lumara_web import services

    monkeypatch.setattr(services, "INTEGRITY_SYNC_BYTES", 0)  # every file counts as large
    db_path = tmp_path / "lumara.db"
    memories = make_database(db_path, ["Ana lives in Lisbon.", "Tea, not coffee."])
    execute(db_path, "DELETE FROM memory_vectors WHERE memory_id = ?", (memories[0].id,))
    checks_started = threading.Event()
    release_check = threading.Event()
    real_check = services.check_database

    def held_check(path):
        checks_started.set()
        release_check.wait(30)
        return real_check(path)

    monkeypatch.setattr(services, "check_database", held_check)
    client = start(tmp_path, db_path)
    assert checks_started.wait(30)
    health = client.get("/health").get_json()
    assert health["database"]["checked"] is False and health["database"]["problems"] == []
    release_check.set()
    assert client.application.extensions["lumara"].database_checked.wait(30)
    health = client.get("/health").get_json()
    assert health["database"]["checked"] is True and health["status"] == "error"
    assert health["database"]["problems"][0].startswith("1 memory has no vector")


def overwrite(path: Path, offset: int, size: int, seed: int = 7) -> None:
    with open(path, "r+b") as file:
        file.seek(offset)
        file.write(random.Random(seed).randbytes(size))


def test_a_memory_without_its_vector_is_reported_and_the_app_still_serves(tmp_path):
    db_path = tmp_path / "lumara.db"
    memories = make_database(db_path, ["Ana lives in Lisbon.", "The boiler code is 4471.",
                                       "Tea, not coffee."])
    execute(db_path, "DELETE FROM memory_vectors WHERE memory_id = ?", (memories[1].id,))

    client = start(tmp_path, db_path)
    health = client.get("/health").get_json()
    assert health["status"] == "error"
    assert health["database"]["problems"] == [
        f"1 memory has no vector (id {memories[1].id}), so search and chat cannot find it: "
        "delete and add it again."]
    assert health["database"]["problems"][0] in client.get("/").get_data(as_text=True)
    assert client.get("/api/memories").get_json()["total"] == 3  # still listed, still served
    # Changing its type once failed with a 500 (store.update_memory read the missing vector).
    changed = client.patch(f"/api/memories/{memories[1].id}", json={"type": "method"})
    assert changed.status_code == 200 and changed.get_json()["memory"]["type"] == "method"

    # The advice works: delete and add again, and the next start is clean.
    assert client.delete(f"/api/memories/{memories[1].id}").status_code == 200
    assert client.post("/api/memories", json={"content": memories[1].content}).status_code == 201
    assert start(tmp_path, db_path).get("/health").get_json()["database"]["problems"] == []


def test_a_vector_without_its_memory_is_reported_and_search_skips_it(tmp_path):
    db_path = tmp_path / "lumara.db"
    memories = make_database(db_path, ["Ana lives in Lisbon.", "Ana moved to Porto."])
    # As if a tool outside Lumara deleted the row alone (store.delete_memory takes both).
    execute(db_path, "DELETE FROM memories WHERE id = ?", (memories[1].id,))

    client = start(tmp_path, db_path)
    health = client.get("/health").get_json()
    assert health["status"] == "error"
    assert health["database"]["problems"] == [
        f"1 vector belongs to no memory (memory id {memories[1].id}): search skips it; no "
        "memory is affected."]
    found = client.get("/api/memories/search?q=Ana moved to Porto.&threshold=0").get_json()
    assert [hit["memory"]["id"] for hit in found["results"]] == [memories[0].id]


def test_many_unpaired_rows_are_counted_and_only_a_few_quoted(tmp_path):
    db_path = tmp_path / "lumara.db"
    memories = make_database(db_path, [f"Memory number {n}." for n in range(8)])
    execute(db_path, "DELETE FROM memory_vectors WHERE memory_id > 1")
    conn = db.connect(db_path)
    try:
        assert store.check_integrity(conn).problems() == [
            "7 memories have no vector (id 2, 3, 4, 5, 6 and 2 more), so search and chat "
            "cannot find them: delete and add them again."]
        assert store.integrity_problems(conn) == ["7 memories have no vector"]
    finally:
        conn.close()
    assert len(memories) == 8


def test_a_damaged_page_in_the_middle_of_the_file_is_reported_and_the_app_still_starts(
        tmp_path):
    original = tmp_path / "original" / "lumara.db"
    fill_memories(original.parent, 300)
    conn = db.connect(original)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the main file
    conn.close()
    damaged = tmp_path / "damaged.db"
    shutil.copy(original, damaged)
    # One page's worth of noise in the middle: there, the vectors' chunk (the bulk of the
    # file); the noise crosses a page start, so SQLite's structure checks see it.
    overwrite(damaged, damaged.stat().st_size // 2, PAGE_BYTES)

    client = start(tmp_path, damaged)
    health = client.get("/health").get_json()
    assert health["status"] == "error"
    [problem] = health["database"]["problems"]
    assert problem.startswith("The database file is damaged in memory_vectors_vector_chunks00:"
                              " SQLite's check found ")
    assert "restore it from a backup" in problem
    assert len(problem) < 600, "a summary, not SQLite's hundred lines"
    assert client.get("/api/memories").get_json()["total"] == 300  # what is readable is shown

    assert start(tmp_path / "control", original).get("/health").get_json()[
        "database"]["problems"] == []


@pytest.mark.live_server
@pytest.mark.parametrize("damage", ["header", "not_sqlite"])
def test_python_app_py_stops_with_a_clear_message_on_a_file_sqlite_cannot_open(
        tmp_path, damage):
    db_path = tmp_path / "lumara.db"
    if damage == "header":  # a real database whose first page was overwritten
        make_database(db_path, ["Ana lives in Lisbon."])
        overwrite(db_path, 0, PAGE_BYTES)
    else:
        db_path.write_text("my shopping list\n")
    before = db_path.read_bytes()

    result = subprocess.run(
        [sys.executable, "app.py", "--data-dir", str(tmp_path / "data"), "--db-path",
         str(db_path), "--port", str(free_port())],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"lumara: Cannot open the database {db_path} (file is not a database). The file is "
        "damaged or not a Lumara database. Restore it from a backup, or move it aside (with "
        "any -wal and -shm files next to it) and Lumara starts with an empty one; or choose "
        "another file with --db-path.")
    assert db_path.read_bytes() == before, "the damaged file is left as it was"


@pytest.mark.live_server
def test_python_app_py_starts_on_unpaired_rows_and_reports_them(tmp_path, embedding_cache_dir):
    data_dir = tmp_path / "lumara"
    data_dir.mkdir()
    memories = make_database(data_dir / "lumara.db", ["Ana lives in Lisbon.",
                                                      "The boiler code is 4471.",
                                                      "Tea, not coffee."])
    execute(data_dir / "lumara.db", "DELETE FROM memory_vectors WHERE memory_id = ?",
            (memories[0].id,))
    execute(data_dir / "lumara.db", "DELETE FROM memories WHERE id = ?", (memories[2].id,))

    with AppProcess(data_dir, models_dir=embedding_cache_dir) as server:
        health = server.wait_until("error")
        assert [problem.split(" (")[0] for problem in health["database"]["problems"]] == [
            "1 memory has no vector", "1 vector belongs to no memory"]
        # Both models still load, and the API answers: only the database is in question.
        health = server.wait_models_settled()
        assert (health["embedder"]["state"], health["chat_model"]["state"]) == ("ready", "ready")
        code, listed = server.request("/api/memories")
        assert code == 200 and listed["total"] == 2
