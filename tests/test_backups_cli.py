"""`python -m lumara_web backup` and `restore FILE`: one backup now, its path printed; a
restore that refuses a damaged or foreign file with a clear message and changes nothing,
keeps the current database as a backup first, and brings back a lost database."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from lumara_web import cli
from lumara_web.storage import db, store
from lumara_web.storage.backups import verify

from .fakes import FakeEmbedder

PROJECT_ROOT = Path(__file__).resolve().parent.parent
fake = FakeEmbedder()
CONTENTS = ["My sister lives in Lisbon.", "I steep cold brew for 16 hours.",
            "We hiked the Douro valley in May."]


@pytest.fixture
def data_dir(make_app):
    """A data folder whose database holds three memories (the app is not used after)."""
    settings = make_app(backups=7).extensions["lumara"].settings
    conn = db.connect(settings["db_path"])
    try:
        for content in CONTENTS:
            store.insert_memory(conn, content=content, type="knowledge", tags=[],
                                embedding=fake.vector(content))
    finally:
        conn.close()
    return settings["data_dir"]


def contents(data_dir: Path) -> list[str]:
    conn = db.connect(data_dir / "lumara.db")
    try:
        memories, _ = store.list_memories(conn, limit=100)
    finally:
        conn.close()
    return sorted(memory.content for memory in memories)


def backup_now(data_dir: Path, capsys) -> Path:
    cli.main(["backup", "--data-dir", str(data_dir)])
    out = capsys.readouterr()
    path = Path(out.out.strip())
    assert path.parent == data_dir / "backups" and "3 memories" in out.err
    return path


def forget_one(data_dir: Path) -> None:
    conn = db.connect(data_dir / "lumara.db")
    try:
        memories, _ = store.list_memories(conn, limit=1)
        store.delete_memory(conn, memories[0].id)
        store.purge_trash(conn)
    finally:
        conn.close()


def test_backup_writes_one_now_and_prints_its_path(data_dir, capsys):
    path = backup_now(data_dir, capsys)
    assert path.name.endswith("-manual.db") and verify(path) == 3


def test_restore_brings_the_backup_back_and_keeps_the_database_it_replaces(data_dir, capsys):
    path = backup_now(data_dir, capsys)
    forget_one(data_dir)
    assert len(contents(data_dir)) == 2
    cli.main(["restore", "--data-dir", str(data_dir), str(path)])
    out = capsys.readouterr().out
    assert contents(data_dir) == sorted(CONTENTS)
    assert out.startswith(f"Restored {path} into {data_dir / 'lumara.db'}: 3 memories.")
    kept = Path(out.split("kept in ")[1].strip().rstrip("."))
    assert kept.name.endswith("-restore.db") and verify(kept) == 2


def test_restore_refuses_while_a_server_uses_the_folder(data_dir, capsys):
    from lumara_web.storage.server_lock import hold_while_serving

    path = backup_now(data_dir, capsys)
    forget_one(data_dir)
    serving = hold_while_serving(data_dir)  # as `python app.py` holds it while it runs
    try:
        with pytest.raises(SystemExit) as refused:
            cli.main(["restore", "--data-dir", str(data_dir), str(path)])
        assert "a Lumara server is using this data folder" in str(refused.value)
        assert len(contents(data_dir)) == 2  # nothing restored
    finally:
        serving.close()
    cli.main(["restore", "--data-dir", str(data_dir), str(path)])  # the server has stopped
    assert contents(data_dir) == sorted(CONTENTS)


def test_restore_takes_a_backup_by_its_name(data_dir, capsys, monkeypatch, tmp_path):
    path = backup_now(data_dir, capsys)
    forget_one(data_dir)
    monkeypatch.chdir(tmp_path)  # the name is not a file here: the backup folder's is meant
    cli.main(["restore", "--data-dir", str(data_dir), path.name])
    assert contents(data_dir) == sorted(CONTENTS)


def test_restore_refuses_a_damaged_or_foreign_file_and_changes_nothing(data_dir, tmp_path,
                                                                      capsys):
    path = backup_now(data_dir, capsys)
    damaged = tmp_path / "damaged.db"
    data = bytearray(path.read_bytes())
    data[4096 * 2:4096 * 4] = bytes(4096 * 2)  # two pages zeroed
    damaged.write_bytes(bytes(data))
    foreign = tmp_path / "notes.db"
    other = sqlite3.connect(foreign)
    other.execute("CREATE TABLE notes (text TEXT)")
    other.commit()
    other.close()
    forget_one(data_dir)
    for file, says in ((damaged, "damaged"), (foreign, "not Lumara's"),
                       (tmp_path / "nothing.db", "There is no file")):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["restore", "--data-dir", str(data_dir), str(file)])
        message = str(exit_.value)
        assert message.startswith("lumara: nothing was restored:") and says in message, message
        assert len(contents(data_dir)) == 2
    assert [p.name for p in (data_dir / "backups").glob("*-restore.db")] == []


def test_restore_brings_back_a_lost_database(data_dir, capsys):
    path = backup_now(data_dir, capsys)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{data_dir / 'lumara.db'}{suffix}").unlink(missing_ok=True)
    cli.main(["restore", "--data-dir", str(data_dir), str(path)])
    assert contents(data_dir) == sorted(CONTENTS)


def test_the_command_runs_as_a_module(data_dir):
    result = subprocess.run([sys.executable, "-m", "lumara_web", "backup", "--data-dir",
                             str(data_dir)], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).is_file()
