"""Backups (storage/backups.py) on real SQLite files: each a checked, private copy under a
name that sorts by time; rotation; 0 = off; refused names and files; a restore that gives
back every memory with its vector, versions, trash and conversations; a backup SIGKILLed
half-way that leaves everything as it was; the daily thread; the backup before a migration."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from lumara_web.errors import NotFound, ValidationError
from lumara_web.search.vector_index import VectorIndex
from lumara_web.services import prepare_database
from lumara_web.storage import backups as backups_module
from lumara_web.storage import conversation_store, db, migrations, store
from lumara_web.storage.backups import (
    BackupFailed,
    Backups,
    DailyBackups,
    UnusableBackup,
    backup_name,
    parse_name,
    verify,
)

from .fakes import FakeEmbedder
from .helpers import WAIT, wait_until

PROJECT_ROOT = Path(__file__).resolve().parent.parent
fake = FakeEmbedder()


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "data" / "lumara.db"
    conn = db.connect(path)
    migrations.migrate(conn)
    conn.close()
    return path


@pytest.fixture
def conn(database):
    connection = db.connect(database)
    yield connection
    connection.close()


def backups_of(database: Path, keep: int = 7) -> Backups:
    return Backups(database, database.parent / "backups", keep)


def add(conn, content: str, type: str = "knowledge"):
    return store.insert_memory(conn, content=content, type=type, tags=["t"],
                               embedding=fake.vector(content))


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


# -- writing ------------------------------------------------------------------------------
def test_a_backup_is_a_checked_private_copy_named_by_time_and_reason(database, conn):
    for number in range(3):
        add(conn, f"memory number {number} about the garden")
    backups = backups_of(database)
    before = datetime.now(timezone.utc)

    made = backups.create("import")

    assert made.path.parent == database.parent / "backups"
    assert parse_name(made.name) == (made.created_at, "import")
    assert made.name.startswith("lumara-") and made.name.endswith("Z-import.db")
    created = datetime.fromisoformat(made.created_at)
    assert before - timedelta(seconds=1) <= created <= datetime.now(timezone.utc)
    assert made.memories == 3 and made.size == made.path.stat().st_size
    assert mode(made.path) == 0o600 and mode(made.path.parent) == 0o700
    # One self-contained file: no -wal beside it, not marked WAL.
    assert sorted(p.name for p in made.path.parent.iterdir()) == [".lock", made.name]
    copy = sqlite3.connect(f"{made.path.as_uri()}?mode=ro", uri=True)
    try:
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        copy.close()
    assert verify(made.path) == 3
    assert [backup.to_dict() for backup in backups.list()] == [
        {"name": made.name, "created_at": made.created_at, "size": made.size,
         "memories": 3, "reason": "import"}]


def test_names_stay_unique_and_in_order_within_a_millisecond(database):
    backups = backups_of(database)
    made = [backups.create(reason) for reason in ("manual", "restore", "daily", "import")]
    assert len({backup.name for backup in made}) == 4
    # Newest first, by name and by time alike.
    assert [backup.name for backup in backups.list()] == [b.name for b in reversed(made)]
    times = [backup.created_at for backup in made]
    assert times == sorted(times)


def test_rotation_keeps_the_newest_n_and_nothing_it_did_not_write(database):
    backups = backups_of(database, keep=3)
    mine = backups.folder / "my-notes.txt"
    made = []
    for _ in range(5):
        made.append(backups.create("daily"))
        mine.parent.mkdir(exist_ok=True)
        mine.write_text("kept")
    assert [backup.name for backup in backups.list()] == [b.name for b in reversed(made[2:])]
    assert not made[0].path.exists() and not made[1].path.exists()
    assert mine.read_text() == "kept"


def test_zero_turns_the_automatic_backups_off(database, conn):
    add(conn, "one memory worth keeping")
    backups = backups_of(database, keep=0)
    assert not backups.enabled
    assert backups.before("import") is None
    assert not backups.folder.exists()
    daily = DailyBackups(backups, first_check=0)
    daily.start()
    assert daily.thread is None
    # One asked for by name is still written, and none is ever rotated away.
    made = [backups.create("manual") for _ in range(3)]
    assert [backup.name for backup in backups.list()] == [b.name for b in reversed(made)]


def test_a_backup_that_cannot_be_written_refuses_the_operation(database, conn):
    add(conn, "a memory")
    blocked = database.parent / "backups"
    blocked.write_text("a file where the folder should be")
    backups = backups_of(database)
    with pytest.raises(BackupFailed) as failure:
        backups.before("import")
    assert failure.value.status == 503 and failure.value.code == "backup_failed"
    assert "could not back up your memories before this import" in failure.value.message
    assert "--backups 0" in failure.value.message


def test_a_failed_check_leaves_no_file_under_a_backup_name(database, conn, monkeypatch):
    add(conn, "a memory")
    backups = backups_of(database)

    def damaged(path):
        raise UnusableBackup("damaged on purpose", code="backup_damaged")

    monkeypatch.setattr(backups_module, "verify", damaged)
    with pytest.raises(BackupFailed, match="damaged on purpose"):
        backups.create("manual")
    assert sorted(p.name for p in backups.folder.iterdir()) == [".lock"]


# -- names --------------------------------------------------------------------------------
GOOD_NAME = "lumara-2026-12-03T071500.123Z-import.db"


@pytest.mark.parametrize("name", [
    "../lumara.db", "lumara.db", "..", GOOD_NAME + "/../../x", "../" + GOOD_NAME,
    GOOD_NAME.replace("import", "other"), GOOD_NAME.replace(".123Z", "Z"),
    GOOD_NAME + "-wal", ".partial-" + GOOD_NAME, GOOD_NAME + "\x00", " " + GOOD_NAME,
    GOOD_NAME.upper(), GOOD_NAME.replace("2026-12-03", "2026-12-3")])
def test_only_backup_names_are_taken(database, name):
    backups = backups_of(database)
    backups.create("manual")
    assert parse_name(GOOD_NAME) is not None
    assert parse_name(name) is None
    with pytest.raises(ValidationError) as refused:
        backups.find(name)
    assert refused.value.code == "invalid_backup_name"


def test_a_well_formed_name_that_is_not_there_is_not_found(database):
    backups = backups_of(database)
    absent = backup_name(datetime(2020, 1, 2, 3, 4, 5, 6000, timezone.utc), "daily")
    assert absent == "lumara-2020-01-02T030405.006Z-daily.db"
    assert parse_name(absent) == ("2020-01-02T03:04:05.006Z", "daily")
    with pytest.raises(NotFound):
        backups.find(absent)


# -- refused files ------------------------------------------------------------------------
def corrupt(path: Path) -> None:
    """Scramble pages in the middle of the file (the header stays readable)."""
    data = bytearray(path.read_bytes())
    page = 4096
    for offset in range(3 * page, min(len(data), 3 * page + 2 * page)):
        data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def test_the_integrity_check_refuses_a_damaged_backup(database, conn):
    for number in range(300):
        add(conn, f"memory {number} " + "with enough words to fill some pages " * 5)
    backups = backups_of(database)
    made = backups.create("manual")
    corrupt(made.path)
    with pytest.raises(UnusableBackup) as refused:
        verify(made.path)
    assert refused.value.code == "backup_damaged" and refused.value.status == 400
    before = store.count_memories(conn)
    add(conn, "written after the backup")
    with pytest.raises(UnusableBackup):
        backups.restore(made.path)
    assert store.count_memories(conn) == before + 1  # nothing changed
    assert [backup.name for backup in backups.list()] == [made.name]  # no "restore" copy


def test_a_file_that_is_not_a_lumara_database_is_refused(tmp_path, database, conn):
    backups = backups_of(database)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all " * 500)
    other = tmp_path / "other.db"
    plain = sqlite3.connect(other)
    plain.execute("CREATE TABLE notes (text TEXT)")
    plain.commit()
    plain.close()
    for path, code in ((junk, "backup_damaged"), (other, "not_lumara"),
                       (tmp_path / "missing.db", "backup_missing")):
        with pytest.raises(UnusableBackup) as refused:
            backups.restore(path)
        assert refused.value.code == code, refused.value.message
        assert path.name in refused.value.message


def test_a_backup_from_a_newer_lumara_is_refused(database, conn):
    made = backups_of(database).create("manual")
    newer = sqlite3.connect(made.path)
    newer.execute("INSERT INTO schema_migrations VALUES (?, 'm999_future', 'x')",
                  (len(migrations.MIGRATIONS) + 1,))
    newer.commit()
    newer.close()
    with pytest.raises(UnusableBackup) as refused:
        verify(made.path)
    assert refused.value.code == "backup_too_new"


# -- restore ------------------------------------------------------------------------------
def everything(conn) -> dict:
    """What the store API shows: memories with their vectors and versions, the trash, the
    conversations with their messages."""
    memories, _ = store.list_memories(conn, limit=10_000)
    ids = [memory.id for memory in memories]
    found, blobs, types = store.memory_vector_states(conn, ids)
    trash, _ = store.list_deleted_memories(conn, limit=10_000)
    conversations, _ = conversation_store.list_conversations(conn, limit=10_000)
    return {
        "memories": [memory.to_dict() for memory in memories],
        "vectors": dict(zip(found, zip(blobs, types))),
        "versions": {memory_id: [v.to_dict() for v in store.list_versions(conn, memory_id)]
                     for memory_id in ids},
        "trash": [item.to_dict() for item in trash],
        "conversations": [(c.to_dict(), [m.to_dict() for m in conversation_store.list_messages(
            conn, c.id)]) for c in conversations],
    }


def fill(conn) -> dict:
    """Memories (one edited twice, one in the trash) and a conversation."""
    kept = [add(conn, f"{name} lives in {town}") for name, town in
            (("Tomasz", "Wroclaw"), ("Ines", "Porto"), ("Biscuit the cat", "the attic"))]
    edited = kept[0]
    for content in ("Tomasz moved to Krakow", "Tomasz moved to Gdansk"):
        store.update_memory(conn, edited.id, content=content, embedding=fake.vector(content))
    binned = add(conn, "the spare key hangs behind the blue door")
    store.delete_memory(conn, binned.id)
    chat = conversation_store.create_conversation(conn, "Where is the key?")
    conversation_store.add_message(conn, chat.id, "user", "Where is the spare key?")
    conversation_store.add_message(conn, chat.id, "assistant", "Behind the blue door.")
    return {"kept": kept, "binned": binned, "chat": chat}


def test_a_restore_gives_back_every_memory_vector_version_trash_and_conversation(
        database, conn):
    made = fill(conn)
    backups = backups_of(database)
    before = everything(conn)
    assert before["versions"][made["kept"][0].id] and before["trash"]
    backup = backups.create("manual")
    index = VectorIndex(database)  # an index that followed the database since
    index.refresh()

    # Everything changes afterwards: a delete, a purge, an edit, a new memory, a chat gone.
    store.delete_memory(conn, made["kept"][1].id)
    store.purge_trash(conn)
    store.update_memory(conn, made["kept"][2].id, content="Biscuit sleeps in the garden",
                        embedding=fake.vector("Biscuit sleeps in the garden"))
    newcomer = add(conn, "a memory written after the backup")
    conversation_store.delete_conversation(conn, made["chat"].id)
    index.refresh()
    changed = everything(conn)
    assert changed != before

    restored = backups.restore(backup.path)

    assert everything(conn) == before
    assert restored.memories == len(before["memories"])
    # The database as it was before the restore is kept, and restores in turn.
    assert restored.kept.reason == "restore"
    assert verify(restored.kept.path) == len(changed["memories"])
    assert store.integrity_problems(conn) == []
    # The index that followed the replaced database reloads: the restored memory is found
    # again, the one written after the backup is not.
    index.refresh()
    query = fake.vector("Ines lives in Porto")
    assert index.search(query, k=1)[0][0] == made["kept"][1].id
    assert newcomer.id not in {memory_id for memory_id, _ in index.search(
        fake.vector(newcomer.content), k=10)}
    index.close()
    backups.restore(restored.kept.path)
    assert everything(conn) == changed


def test_a_restore_of_an_older_schema_brings_it_up_to_date(database, conn, monkeypatch):
    old = database.parent / "old.db"
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:-1])
    old_conn = db.connect(old)
    migrations.migrate(old_conn)
    old_conn.close()
    monkeypatch.undo()
    backups_of(database).restore(old)
    versions = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    assert versions == set(range(1, len(migrations.MIGRATIONS) + 1))


# -- a backup killed half-way ---------------------------------------------------------------
BACKUP_IN_A_CHILD = textwrap.dedent("""
    import sys
    from lumara_web.storage.backups import Backups
    Backups(sys.argv[1], sys.argv[2], 7).create("manual")
""")


def pad(conn, megabytes: int) -> None:
    """Make the database large (cache rows: any table is copied alike), so the backup takes
    long enough to be caught half-way."""
    with db.transaction(conn):
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " INSERT INTO embedding_cache (model_id, text_sha256, embedding, created_at)"
            " SELECT 'padding', randomblob(32), randomblob(4000), '2020-01-01' FROM n",
            (megabytes * 256,))


def test_a_backup_killed_half_way_leaves_the_database_and_earlier_backups_whole(
        database, conn):
    for number in range(20):
        add(conn, f"memory {number} kept through the kill")
    backups = backups_of(database)
    earlier = backups.create("daily")
    pad(conn, 96)
    child = subprocess.Popen([sys.executable, "-c", BACKUP_IN_A_CHILD, str(database),
                              str(backups.folder)], cwd=PROJECT_ROOT)
    try:
        # Killed as soon as its temporary file exists: it is copying or checking then.
        deadline = time.monotonic() + WAIT
        while not any(backups.folder.glob(".partial-*")):
            assert child.poll() is None, "the backup process ended before writing anything"
            assert time.monotonic() < deadline, "the backup never started"
            time.sleep(0.001)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    leftovers = sorted(p.name for p in backups.folder.glob(".partial-*"))
    assert leftovers, "the kill came after the backup was complete"
    # No half file under a backup name; the earlier backup is whole and listed.
    assert [backup.name for backup in backups.list()] == [earlier.name]
    assert verify(earlier.path) == 20
    assert conn.execute("PRAGMA integrity_check").fetchall()[0][0] == "ok"
    assert store.count_memories(conn) == 20
    # The next backup clears the leftovers and succeeds.
    made = backups.create("manual")
    assert not any(backups.folder.glob(".partial-*"))
    assert [backup.name for backup in backups.list()] == [made.name, earlier.name]
    assert made.memories == 20


# -- the daily backup -------------------------------------------------------------------------
def test_the_daily_backup_waits_for_the_newest_to_be_a_day_old(database, conn):
    backups = backups_of(database)
    daily = DailyBackups(backups, retry=3600)
    # An empty database: nothing to keep yet, look again later.
    assert daily.check() == 3600 and backups.list() == []
    add(conn, "something worth keeping")
    assert daily.check() == pytest.approx(86400, abs=5)
    first = backups.newest()
    assert first.reason == "daily"
    # Young: the next look is when it turns a day old, no backup now.
    wait = daily.check()
    assert 86000 < wait <= 86400 and backups.list() == [first]
    # A day old (renamed as if made yesterday): a new one.
    yesterday = datetime.now(timezone.utc) - timedelta(days=1, minutes=1)
    first.path.rename(first.path.with_name(backup_name(yesterday, "daily")))
    daily.check()
    assert len(backups.list()) == 2 and daily.made == 2


def test_the_daily_thread_sleeps_between_looks_and_stops(database, conn):
    add(conn, "something worth keeping")
    backups = backups_of(database)
    daily = DailyBackups(backups, first_check=0)
    daily.start()
    assert daily.checked.wait(WAIT)
    wait_until(lambda: daily.made == 1, what="the first daily backup")
    assert [backup.reason for backup in backups.list()] == ["daily"]
    daily.stop()
    assert not daily.thread.is_alive()


# -- before a migration --------------------------------------------------------------------
def test_a_pending_migration_of_an_existing_database_is_backed_up_first(tmp_path,
                                                                         monkeypatch):
    data_dir = tmp_path / "data"
    settings = {"data_dir": data_dir, "db_path": data_dir / "lumara.db", "backups": 7,
                "trash_days": 30}
    backups = Backups.for_settings(settings)
    # A new database: nothing to back up.
    prepare_database(settings, backups)
    assert backups.list() == []
    # An up-to-date one: nothing to migrate, no backup.
    prepare_database(settings, backups)
    assert backups.list() == []
    # One from before the last migration.
    old = tmp_path / "old"
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:-1])
    settings_old = {**settings, "data_dir": old, "db_path": old / "lumara.db"}
    prepare_database(settings_old)
    conn = db.connect(settings_old["db_path"])
    add(conn, "written by the older version")
    conn.close()
    monkeypatch.undo()
    old_backups = Backups.for_settings(settings_old)
    prepare_database(settings_old, old_backups)
    [made] = old_backups.list()
    assert made.reason == "migration" and made.memories == 1
    copy = db.connect_read_only(made.path)
    try:
        assert copy.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == \
            len(migrations.MIGRATIONS) - 1
    finally:
        copy.close()


def test_a_failed_backup_before_a_migration_migrates_nothing(tmp_path, monkeypatch):
    path = tmp_path / "lumara.db"
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:-1])
    conn = db.connect(path)
    migrations.migrate(conn)
    monkeypatch.undo()

    def refuse():
        raise BackupFailed("no room")

    with pytest.raises(BackupFailed):
        migrations.migrate(conn, before=refuse)
    assert len(migrations.applied_versions(conn)) == len(migrations.MIGRATIONS) - 1
    conn.close()
    assert os.path.exists(path)
