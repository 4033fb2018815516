"""Every SQLite connection is prepared here: driver choice, sqlite-vec, WAL, pragmas."""

from __future__ import annotations

import functools
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

from ..errors import DatabaseError
from .private import create_private_file, private_folder

# Seconds a writer waits for another writer's lock before giving up; writes here take
# milliseconds, so 10 s only runs out if something is badly wrong.
BUSY_TIMEOUT_SECONDS = 10.0


@functools.cache
def driver() -> tuple[ModuleType, str]:
    """The stdlib sqlite3 when it can load extensions, else pysqlite3 (which always can)."""
    import sqlite3

    if hasattr(sqlite3.Connection, "enable_load_extension"):
        return sqlite3, "sqlite3"
    try:
        from pysqlite3 import dbapi2
    except ImportError:
        raise DatabaseError(
            "This Python's sqlite3 cannot load extensions (needed for sqlite-vec) and the "
            "fallback driver is missing: pip install pysqlite3-binary") from None
    return dbapi2, "pysqlite3"


def connect(path: str | Path, *, check_same_thread: bool = True) -> Any:
    """Open `path` ready for Lumara: sqlite-vec loaded, WAL, foreign keys, Row results.

    Autocommit mode (isolation_level=None): writes group themselves with `transaction()`.
    """
    import sqlite_vec

    sqlite, _ = driver()
    if str(path) != ":memory:":
        private_folder(Path(path).parent)
        create_private_file(Path(path))
    conn = sqlite.connect(str(path), timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None,
                          check_same_thread=check_same_thread)
    try:
        conn.enable_load_extension(True)
        sqlite_vec.load(conn)
        conn.enable_load_extension(False)
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable across application crashes in WAL mode; only a power cut can
        # lose the last commits, and it never corrupts the file.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.row_factory = sqlite.Row
    except Exception:
        conn.close()
        raise
    return conn


def connect_read_only(path: str | Path) -> Any:
    """Open a database file only to read it (a backup, a file to restore): sqlite-vec loaded,
    no pragma that writes, so looking at a file never changes it (not even its journal
    mode). A file that is no database fails at its first query, not here."""
    import sqlite_vec

    sqlite, _ = driver()
    conn = sqlite.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True,
                          timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        conn.enable_load_extension(True)
        sqlite_vec.load(conn)
        conn.enable_load_extension(False)
        conn.row_factory = sqlite.Row
    except Exception:
        conn.close()
        raise
    return conn


@contextmanager
def transaction(conn: Any) -> Iterator[Any]:
    """One write transaction; IMMEDIATE takes the write lock up front so two writers
    queue on busy_timeout instead of failing with 'database is locked' mid-way."""
    if conn.in_transaction:  # already inside one: join it
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def versions(conn: Any) -> dict[str, str]:
    sqlite_version, vec_version = conn.execute("SELECT sqlite_version(), vec_version()").fetchone()
    return {"driver": driver()[1], "sqlite_version": sqlite_version,
            "sqlite_vec_version": vec_version}
