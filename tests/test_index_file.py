"""The vector index saved beside the database (search/index_file.py): a later start loads
it and catches up from the change log; a stale, damaged, foreign or too-old file is never
trusted — the index is rebuilt from SQLite and still answers exactly."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from lumara_web.search import index_file
from lumara_web.search.vector_index import VectorIndex
from lumara_web.services import prepare_database
from lumara_web.storage import db, meta_store, migrations, store

from .test_vector_index import (
    brute_force,
    clustered,
    every_candidate_rescored,  # noqa: F401 (autouse fixture)
    fill,
)


def opened(tmp_path, **options) -> VectorIndex:
    index = VectorIndex(tmp_path / "lumara.db", cache_dir=tmp_path / "index", **options)
    index.refresh()
    return index


def answers_exactly(index: VectorIndex, conn, seed: int = 9) -> None:
    for query in clustered(5, seed=seed):
        found = [memory_id for memory_id, _ in index.search(query, k=10)]
        assert found == brute_force(conn, query, 10)


def rebuilt_from_sqlite(folder, conn, size: int | None = None) -> None:
    """The index in `folder` did not use its saved file, and answers exactly."""
    index = opened(folder)
    try:
        assert index.stats()["source"] == "sqlite"
        assert size is None or index.stats()["size"] == size
        answers_exactly(index, conn)
    finally:
        index.close()


@pytest.mark.parametrize("exact_limit", [10_000, 100], ids=["exact", "ivf"])
def test_a_later_start_loads_the_saved_index_and_catches_up(tmp_path, conn, exact_limit):
    ids = fill(conn, clustered(400, seed=1))
    first = opened(tmp_path, exact_limit=exact_limit)
    assert first.stats()["source"] == "sqlite"
    first.close()
    # Changes after the save: the next start applies them from the change log.
    store.delete_memory(conn, ids[0])
    added = fill(conn, clustered(5, seed=2))
    later = opened(tmp_path, exact_limit=exact_limit)
    try:
        stats = later.stats()
        assert stats["source"] == "saved" and stats["size"] == 404
        assert stats["layout"] == ("exact" if exact_limit > 400 else "ivf")
        assert all(memory_id in dict(later.search(vector, k=3))
                   for memory_id, vector in zip(added, clustered(5, seed=2)))
        answers_exactly(later, conn)
        for query in clustered(3, seed=16):  # the saved types filter as the built ones
            assert [memory_id for memory_id, _ in later.search(query, k=5, type="method")] \
                == brute_force(conn, query, 5, type="method")
    finally:
        later.close()


def test_a_damaged_file_is_rebuilt_from_the_database(tmp_path, conn, caplog):
    fill(conn, clustered(300, seed=3))
    opened(tmp_path).close()
    vectors = tmp_path / "index" / "saved" / "vectors.npy"
    data = bytearray(vectors.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte in a vector
    vectors.write_bytes(bytes(data))
    index = opened(tmp_path)
    try:
        assert index.stats()["source"] == "sqlite"
        assert "vectors.npy is damaged" in caplog.text
        answers_exactly(index, conn)
    finally:
        index.close()


def test_a_truncated_description_or_missing_file_is_rebuilt(tmp_path, conn):
    fill(conn, clustered(300, seed=4))
    opened(tmp_path).close()
    saved = tmp_path / "index" / "saved"
    (saved / "ids.npy").unlink()
    index = opened(tmp_path)
    assert index.stats()["source"] == "sqlite"
    index.close()
    (saved / "meta.json").write_text('{"format": 1, "lay')  # a save cut short
    rebuilt_from_sqlite(tmp_path, conn)


def test_an_index_saved_for_another_database_is_not_used(tmp_path, conn):
    fill(conn, clustered(300, seed=5))
    opened(tmp_path).close()
    other = tmp_path / "other"
    other.mkdir()
    other_conn = db.connect(other / "lumara.db")
    migrations.migrate(other_conn)
    fill(other_conn, clustered(300, seed=6))  # the same ids, other vectors
    shutil.copytree(tmp_path / "index", other / "index")
    try:
        rebuilt_from_sqlite(other, other_conn)
    finally:
        other_conn.close()


def test_a_database_replaced_by_an_older_copy_is_not_answered_from_a_newer_index(
        tmp_path, conn):
    fill(conn, clustered(200, seed=7))
    conn.close()
    backup = tmp_path / "backup.db"
    shutil.copy(tmp_path / "lumara.db", backup)
    conn = db.connect(tmp_path / "lumara.db")
    fill(conn, clustered(50, seed=8))
    opened(tmp_path).close()
    conn.close()
    shutil.copy(backup, tmp_path / "lumara.db")  # the older database, same identity
    conn = db.connect(tmp_path / "lumara.db")
    try:
        rebuilt_from_sqlite(tmp_path, conn, 200)
    finally:
        conn.close()


def test_a_saved_index_whose_vectors_differ_from_the_database_is_not_trusted(tmp_path,
                                                                             conn):
    """Checks pass (same database, position, checksums) but the content came from another
    history: the sample compared with SQLite catches it."""
    fill(conn, clustered(300, seed=10))
    opened(tmp_path).close()
    saved = tmp_path / "index" / "saved"
    vectors = np.load(saved / "vectors.npy")
    np.save(saved / "vectors.npy", np.ascontiguousarray(vectors[::-1]))
    meta = json.loads((saved / "meta.json").read_text())
    meta["files"]["vectors.npy"] = index_file._crc(saved / "vectors.npy")
    (saved / "meta.json").write_text(json.dumps(meta))
    rebuilt_from_sqlite(tmp_path, conn)


def test_an_index_saved_before_the_change_log_was_pruned_is_rebuilt(tmp_path, conn):
    fill(conn, clustered(100, seed=11))
    opened(tmp_path).close()
    fill(conn, clustered(3, seed=12))
    # The changes since the save are pruned from the log (as after 10,000 more changes, or
    # a re-embed to another width): they cannot be applied, so the index is rebuilt.
    with db.transaction(conn):
        conn.execute("UPDATE memory_changes_pruned SET through_seq = ?",
                     (store.memory_change_seq(conn),))
    index = opened(tmp_path)
    try:
        assert index.stats()["source"] == "sqlite" and index.stats()["size"] == 103
    finally:
        index.close()


def test_a_save_killed_midway_leaves_no_file_behind_at_the_next_save(tmp_path, conn):
    fill(conn, clustered(50, seed=13))
    saved = tmp_path / "index" / "saved"
    saved.mkdir(parents=True)
    abandoned = saved / "vectors.npy.999999999.partial"  # no such process
    abandoned.write_bytes(b"half a matrix")
    opened(tmp_path).close()
    assert not abandoned.exists()
    assert sorted(path.name for path in saved.iterdir()) == [
        "codes.npy", "ids.npy", "meta.json", "vectors.npy"]


def test_the_exact_layout_is_saved_again_as_memories_are_added(tmp_path, conn, monkeypatch):
    """A collection that grows keeps a recent save, so a later start never finds the log
    pruned past it."""
    from lumara_web.search import vector_index

    monkeypatch.setattr(vector_index, "RESAVE_CHANGES", 20)
    fill(conn, clustered(100, seed=14))
    index = opened(tmp_path)
    fill(conn, clustered(30, seed=15))
    index.refresh()  # applies 30 changes: a save is due
    index.close()  # waits for the save
    meta = json.loads((tmp_path / "index" / "saved" / "meta.json").read_text())
    assert meta["seq"] == store.memory_change_seq(conn)
    later = opened(tmp_path)
    try:
        assert later.stats()["source"] == "saved" and later.stats()["size"] == 130
        answers_exactly(later, conn)
    finally:
        later.close()


def vector_files(tmp_path) -> list:
    return sorted((tmp_path / "index" / "saved").glob("vectors-*.f32"))


def test_ivf_vectors_live_in_one_file_that_a_second_process_does_not_share(tmp_path,
                                                                           conn):
    """Two processes on one data folder (the web server and an MCP server): the second
    cannot write the first one's vector file, so it builds its own; both answer exactly."""
    fill(conn, clustered(400, seed=11))
    first = opened(tmp_path, exact_limit=100)
    second = None
    try:
        assert first.stats()["layout"] == "ivf" and len(vector_files(tmp_path)) == 1
        second = opened(tmp_path, exact_limit=100)
        assert second.stats()["source"] == "sqlite"
        fill(conn, clustered(3, seed=12))
        for index in (first, second):
            answers_exactly(index, conn)
    finally:
        first.close()
        if second is not None:
            second.close()
    later = opened(tmp_path, exact_limit=100)
    try:
        assert later.stats()["source"] == "saved"
        answers_exactly(later, conn)
        later.close()
        later = opened(tmp_path, exact_limit=100)
        later.refresh()
    finally:
        later.close()
    assert len(vector_files(tmp_path)) <= 2  # the saved one, and at most one unreferenced


@pytest.mark.parametrize("damage", ["zeroed", "missing"])
def test_an_ivf_vector_file_that_differs_from_the_database_is_rebuilt(tmp_path, conn,
                                                                      damage):
    fill(conn, clustered(400, seed=13))
    opened(tmp_path, exact_limit=100).close()
    [path] = vector_files(tmp_path)
    if damage == "zeroed":
        path.write_bytes(bytes(path.stat().st_size))
    else:
        path.unlink()
    index = opened(tmp_path, exact_limit=100)
    try:
        assert index.stats()["source"] == "sqlite"
        answers_exactly(index, conn)
    finally:
        index.close()


def test_the_ivf_layout_is_saved_again_as_memories_change(tmp_path, conn, monkeypatch):
    from lumara_web.search import vector_index

    monkeypatch.setattr(vector_index, "RESAVE_CHANGES", 20)
    fill(conn, clustered(400, seed=14))
    index = opened(tmp_path, exact_limit=100)
    meta = tmp_path / "index" / "saved" / "meta.json"
    first_seq = json.loads(meta.read_text())["seq"]
    fill(conn, clustered(25, seed=15))
    index.refresh()
    index.close()  # waits for the save
    assert json.loads(meta.read_text())["seq"] >= first_seq + 25
    later = opened(tmp_path, exact_limit=100)
    try:
        assert later.stats()["source"] == "saved" and later.stats()["size"] == 425
        answers_exactly(later, conn)
    finally:
        later.close()


def test_a_prepared_database_has_its_identity_before_the_index_is_saved(tmp_path):
    """Given when the server prepares the database, not by the index's first save on a
    background thread: a snapshot taken after start-up does not change by itself."""
    settings = {"db_path": tmp_path / "lumara.db", "trash_days": 30}
    prepare_database(settings)
    conn = db.connect(settings["db_path"])
    try:
        given = meta_store.get_value(conn, meta_store.DATABASE_ID)
        assert given and index_file.database_id(conn) == given
    finally:
        conn.close()
    prepare_database(settings)  # a later start keeps it
    conn = db.connect(settings["db_path"])
    try:
        assert meta_store.get_value(conn, meta_store.DATABASE_ID) == given
    finally:
        conn.close()
