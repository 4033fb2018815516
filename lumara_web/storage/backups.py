"""Backups that make losing the memory file hard: copies of the database in
`<data dir>/backups`, made with SQLite's online backup API, checked, rotated and restorable.

When: once a day while the server runs (DailyBackups), and before every operation that
changes much at once — a schema migration (of an existing database), an import, a re-embed,
emptying the trash and a restore. Each is named by its sortable UTC time and its reason:
`lumara-2026-12-03T071500.123Z-import.db` (milliseconds: a restore's own backup may follow
another within the second). The newest `keep` (setting `backups`, default 7) are kept; 0
turns the automatic ones off and deletes none (one asked for by name — `python -m lumara_web
backup`, "Back up now" — is still written, and a restore still keeps the database it
replaces: that copy is the restore's undo).

Never half a file: a backup is written under a hidden temporary name (`.partial-…`), its
journal made DELETE so it is one self-contained file, checked with PRAGMA integrity_check
(not quick_check: a backup is what one trusts when all else failed), synced to disk, and only
then renamed to its backup name. A backup killed at any point leaves at most a `.partial-`
file, which is never listed and is removed by the next backup. Files are 0600, the folder
0700: they hold everything the database holds.

A failed backup before an operation refuses the operation (BackupFailed): the person chose
safety, and a full disk or an unwritable folder is better told before their memories change
than after. Imports and re-embeds run as background jobs: their backup is made on the job's
thread (a large database takes seconds), so the job — not the request — fails, its status
saying why, with nothing changed. `--backups 0` goes without.

One backup or restore at a time, across threads and processes: each holds an exclusive flock
on `backups/.lock` (POSIX, as vector_file.py's locks).

Restore (`restore`): the file is checked first (integrity_check, Lumara's tables, a schema
this version knows), the current database is backed up, then the file is copied into a
staging file, migrated to this version's schema and its change log restarted past the live
one's, and copied into the live database with the backup API in one step: SQLite's write
lock on the database is held for the copy, so other connections see the old database or
the new one, never a mix. The restarted change log makes every vector index that followed
the old database (in this process or another) reload (search/vector_index.py), and keeps
the change-log-keyed caches (search/aliases.py) from matching an old position. The project
has no lock or pid file for a running server: the command-line restore cannot detect one,
so it must be run with the server stopped (the page's Restore is for a running server)."""

from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping

from ..errors import DatabaseError, LumaraError, NotFound, ValidationError
from . import db, migrations, store

log = logging.getLogger(__name__)

FOLDER = "backups"
REASONS = ("daily", "manual", "migration", "import", "reembed", "empty-trash", "restore")
NAME = re.compile(r"lumara-(\d{4}-\d{2}-\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z-("
                  + "|".join(map(re.escape, REASONS)) + r")\.db")
TEMP_PREFIX = ".partial-"
LOCK_FILE = ".lock"
# A restored database's change log starts this far past the replaced one's last position:
# more than any count of changes that could commit between reading that position and the
# copy, so no index can have caught up past it (and then miss the reload).
RESTORE_SEQ_GAP = 2**32


class BackupFailed(LumaraError):
    """A backup could not be written: the operation that waited for it did not run."""

    status = 503
    code = "backup_failed"


class UnusableBackup(ValidationError):
    """A file to restore is damaged, not a Lumara database, or from a newer Lumara."""

    code = "backup_unusable"


@dataclass(frozen=True)
class Backup:
    path: Path
    created_at: str  # ISO 8601 UTC, from the name
    reason: str
    size: int  # bytes
    memories: int | None  # None: the file could not be read

    @property
    def name(self) -> str:
        return self.path.name

    def to_dict(self) -> dict:
        return {"name": self.name, "created_at": self.created_at, "size": self.size,
                "memories": self.memories, "reason": self.reason}


@dataclass(frozen=True)
class Restored:
    source: str  # the file restored
    memories: int  # in the database now
    kept: Backup  # the database as it was before

    def to_dict(self) -> dict:
        return {"restored": self.source, "memories": self.memories,
                "previous": self.kept.to_dict()}


def backup_name(moment: datetime, reason: str) -> str:
    moment = moment.astimezone(timezone.utc)
    return (f"lumara-{moment:%Y-%m-%dT%H%M%S}.{moment.microsecond // 1000:03d}Z-"
            f"{reason}.db")


def parse_name(name: str) -> tuple[str, str] | None:
    """(created_at as ISO 8601, reason) of a backup's file name; None for any other name
    (so a name from a URL can never reach beyond the folder)."""
    match = NAME.fullmatch(name)
    if match is None:
        return None
    day, hours, minutes, seconds, millis, reason = match.groups()
    return f"{day}T{hours}:{minutes}:{seconds}.{millis}Z", reason


def verify(path: Path) -> int:
    """Check a backup (or any file offered for restore) whole: SQLite's integrity_check,
    Lumara's tables, a schema this version knows. Returns its memory count; raises
    UnusableBackup saying what is wrong."""
    if not path.is_file():
        raise UnusableBackup(f"There is no file {path}.", code="backup_missing")
    try:
        conn = db.connect_read_only(path)
        try:
            tables = {row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"memories", "memory_vectors", "schema_migrations"} <= tables:
                raise UnusableBackup(
                    f"{path.name} is an SQLite database but not Lumara's (it has no "
                    "memories table): choose a Lumara backup.", code="not_lumara")
            findings = [line for row in conn.execute("PRAGMA integrity_check")
                        for line in row[0].splitlines() if line != "ok"]
            if findings:
                raise UnusableBackup(
                    f"{path.name} is damaged: SQLite's integrity check found "
                    f"{len(findings)} problem{'s' if len(findings) > 1 else ''}, the first: "
                    f"{findings[0]}. Choose another backup.", code="backup_damaged")
            newest = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
            if (newest or 0) > len(migrations.MIGRATIONS):
                raise UnusableBackup(
                    f"{path.name} was written by a newer version of Lumara (schema "
                    f"{newest}; this one knows {len(migrations.MIGRATIONS)}): update Lumara "
                    "to restore it.", code="backup_too_new")
            return store.count_memories(conn)
        finally:
            conn.close()
    except db.driver()[0].DatabaseError as error:
        # "file is not a database", "database disk image is malformed", …
        raise UnusableBackup(f"{path.name} cannot be read as a database ({error}): it is "
                             "damaged or not a Lumara backup.", code="backup_damaged") from None


class Backups:
    """The backups of one database, in one folder, keeping the newest `keep`."""

    def __init__(self, db_path: str | Path, folder: str | Path, keep: int):
        self.db_path = Path(db_path)
        self.folder = Path(folder)
        self.keep = keep
        self._counts: dict[tuple[str, int, int], int | None] = {}  # memory counts by file
        self._counts_lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Mapping[str, Any]) -> Backups:
        return cls(settings["db_path"], Path(settings["data_dir"]) / FOLDER,
                   settings["backups"])

    @property
    def enabled(self) -> bool:
        return self.keep > 0

    # -- writing --------------------------------------------------------------------------
    def create(self, reason: str = "manual") -> Backup:
        """Write a backup now (rotating the old ones when backups are on); BackupFailed
        says why one could not be written."""
        with self._exclusive():
            backup = self._write(reason)
            self._rotate()
        return backup

    def before(self, operation: str) -> Backup | None:
        """The backup an operation (a REASONS entry) waits for; None when backups are
        off. A failure is logged and raised: the caller must not go on."""
        if not self.enabled:
            return None
        try:
            return self.create(operation)
        except BackupFailed as error:
            log.error("no backup before %s, so it does not run: %s", operation, error.message)
            raise BackupFailed(f"Lumara could not back up your memories before this "
                               f"{_OPERATIONS.get(operation, operation)}, so it did not "
                               f"start: {error.message} Free some disk space or check the "
                               f"folder {self.folder}; or turn backups off with --backups 0."
                               ) from None

    def rotate(self) -> list[Path]:
        """Delete all but the newest `keep` backups (none when backups are off)."""
        with self._exclusive():
            return self._rotate()

    def _write(self, reason: str) -> Backup:
        if reason not in REASONS:
            raise ValueError(f"reason must be one of {REASONS}, not {reason!r}")
        if not self.db_path.is_file():
            raise BackupFailed(f"There is no database at {self.db_path} to back up.")
        final = self._free_name(reason)
        temp = self.folder / (TEMP_PREFIX + final.name)
        try:
            _create_private(temp)
            source = db.connect(self.db_path)
            try:
                target = db.connect(temp)
                try:
                    source.backup(target)
                    # The copy of a WAL database is marked WAL: make it one file that
                    # needs no -wal beside it.
                    target.execute("PRAGMA journal_mode = DELETE")
                finally:
                    target.close()
            finally:
                source.close()
            memories = verify(temp)
            _sync(temp)
            os.replace(temp, final)
            _sync(self.folder)
        except (OSError, db.driver()[0].Error, UnusableBackup) as error:
            _remove_with_journals(temp)
            detail = error.message if isinstance(error, LumaraError) else str(error)
            raise BackupFailed(f"The backup {final.name} could not be written ({detail}).",
                               ) from error
        except BaseException:
            _remove_with_journals(temp)
            raise
        stat = final.stat()
        with self._counts_lock:
            self._counts[(final.name, stat.st_size, stat.st_mtime_ns)] = memories
        created_at, _ = parse_name(final.name)
        log.info("backed up the database to %s (%d memories)", final, memories)
        return Backup(final, created_at, reason, stat.st_size, memories)

    def _free_name(self, reason: str) -> Path:
        """The backup's path for now; a name already taken moves on by a millisecond, so
        names stay unique and in the order they were made."""
        moment = datetime.now(timezone.utc)
        newest = self._backups()
        if newest and (parse_name(newest[0].name)[0] >= store.utc_timestamp(moment)):
            moment = datetime.fromisoformat(parse_name(newest[0].name)[0]) + timedelta(
                milliseconds=1)
        return self.folder / backup_name(moment, reason)

    def _rotate(self) -> list[Path]:
        if not self.enabled:
            return []
        removed = self._backups()[self.keep:]
        for path in removed:
            path.unlink(missing_ok=True)
            log.info("removed the old backup %s", path.name)
        return removed

    # -- reading --------------------------------------------------------------------------
    def list(self) -> list[Backup]:
        """Every backup, newest first, with its size and memory count."""
        backups = []
        for path in self._backups():
            try:
                stat = path.stat()
            except FileNotFoundError:  # rotated away meanwhile
                continue
            created_at, reason = parse_name(path.name)
            backups.append(Backup(path, created_at, reason, stat.st_size,
                                  self._memory_count(path, stat)))
        return backups

    def newest(self) -> Backup | None:
        found = self.list()
        return found[0] if found else None

    def find(self, name: str) -> Backup:
        """The backup called `name`: a name that is not a backup's is refused (400) before
        any path is made of it; one that is not there is a 404."""
        if parse_name(name) is None:
            raise ValidationError(f"{name[:80]!r} is not a backup's name (like "
                                  f"{backup_name(datetime.now(timezone.utc), 'manual')}).",
                                  code="invalid_backup_name")
        for backup in self.list():
            if backup.name == name:
                return backup
        raise NotFound(f"There is no backup {name}: GET /api/backups lists them.",
                       code="backup_not_found")

    def holds_anything(self) -> bool:
        """Has the database anything worth a backup (memories, trash or conversations)?"""
        if not self.db_path.is_file():
            return False
        conn = db.connect(self.db_path)
        try:
            stats = store.collection_stats(conn)
        finally:
            conn.close()
        return bool(stats["memories"] or stats["deleted_memories"] or stats["conversations"])

    def _backups(self) -> list[Path]:
        """The backup files, newest first (their names sort by time)."""
        if not self.folder.is_dir():
            return []
        return sorted((path for path in self.folder.iterdir() if parse_name(path.name)),
                      key=lambda path: path.name, reverse=True)

    def _memory_count(self, path: Path, stat: os.stat_result) -> int | None:
        key = (path.name, stat.st_size, stat.st_mtime_ns)
        with self._counts_lock:
            if key in self._counts:
                return self._counts[key]
        try:
            conn = db.connect_read_only(path)
            try:
                count = store.count_memories(conn)
            finally:
                conn.close()
        except db.driver()[0].Error as error:
            log.warning("cannot count the memories of the backup %s: %s", path.name, error)
            count = None
        with self._counts_lock:
            self._counts[key] = count
        return count

    # -- restoring --------------------------------------------------------------------------
    def restore(self, source: str | Path) -> Restored:
        """Replace the database with the file `source` (a backup, or any Lumara database
        file), after checking it and backing up the database as it is. UnusableBackup
        (nothing changed) for a damaged or foreign file, BackupFailed when the current
        database could not be backed up first (nothing changed either)."""
        source = Path(source)
        with self._exclusive():
            verify(source)
            kept = self._write("restore")
            staged = self.folder / f"{TEMP_PREFIX}staged-{kept.name}"
            try:
                _create_private(staged)
                memories = self._replace_live(source, staged)
            except (OSError, db.driver()[0].Error) as error:
                raise DatabaseError(f"The restore from {source.name} failed ({error}); the "
                                    f"database is as it was (also kept in {kept.name}).",
                                    code="restore_failed") from error
            finally:
                _remove_with_journals(staged)
            self._rotate()
        log.warning("restored the database from %s (%d memories); the database as it was "
                    "is in %s", source, memories, kept.path)
        return Restored(source.name, memories, kept)

    def _replace_live(self, source: Path, staged: Path) -> int:
        """Copy `source` to `staged`, bring it to this version's schema and restart its
        change log past the live one's, then copy it into the live database in one step
        (the write lock held for the whole copy). Returns its memory count."""
        reader = db.connect_read_only(source)
        try:
            staging = db.connect(staged)
            try:
                reader.backup(staging)
                migrations.migrate(staging)
                live = db.connect(self.db_path)
                try:
                    store.restart_change_log(
                        staging, store.memory_change_seq(live) + RESTORE_SEQ_GAP)
                    memories = store.count_memories(staging)
                    staging.backup(live)
                finally:
                    live.close()
            finally:
                staging.close()
        finally:
            reader.close()
        return memories

    # -- one at a time --------------------------------------------------------------------
    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the folder's lock (threads and processes queue on it); leftovers of a
        backup that was killed are removed first (nobody else can be writing them)."""
        try:
            _private_folder(self.folder)
            handle = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise BackupFailed(f"The backup folder {self.folder} cannot be used "
                               f"({error.strerror or error}).") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            for leftover in self.folder.glob(TEMP_PREFIX + "*"):
                log.warning("removing %s, left by a backup that did not finish", leftover.name)
                leftover.unlink(missing_ok=True)
            yield
        finally:
            os.close(handle)  # releases the lock


_OPERATIONS = {"migration": "database upgrade", "import": "import", "reembed": "re-embed",
               "empty-trash": "emptying of the trash", "restore": "restore"}


def _private_folder(folder: Path) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask, and not applied if it exists


def _create_private(path: Path) -> None:
    """An empty file only this user may read: SQLite opens it as an empty database, and
    its -wal and -shm files take its mode."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _sync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk: a rename must not reach the disk
    before the content it names."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _remove_with_journals(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


class DailyBackups:
    """A daemon thread that makes a backup once the newest is `every` old. It sleeps until
    then on an Event (no polling); a database with nothing in it yet is looked at again
    after `retry`, as is one whose backup failed (logged). Started by Services.start."""

    def __init__(self, backups: Backups, *, every: timedelta = timedelta(days=1),
                 first_check: float = 60.0, retry: float = 3600.0):
        self.backups = backups
        self.every = every
        # The first look waits a little: start-up (models loading) comes first.
        self.first_check = first_check
        self.retry = retry
        self.made = 0  # backups written by this thread
        self.checked = threading.Event()  # set after each look (tests wait on it)
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.backups.enabled and self.thread is None:
            self.thread = threading.Thread(target=self._run, name="lumara-daily-backup",
                                           daemon=True)
            self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.thread is not None:
            self.thread.join()

    def _run(self) -> None:
        wait = self.first_check
        while not self._stop.wait(wait):
            wait = self.check()
            self.checked.set()

    def check(self) -> float:
        """Back up if the newest backup is `every` old; seconds until the next look."""
        try:
            newest = self.backups.newest()
            if newest is not None:
                age = datetime.now(timezone.utc) - datetime.fromisoformat(newest.created_at)
                if age < self.every:
                    return (self.every - age).total_seconds()
            if not self.backups.holds_anything():
                return self.retry
            self.backups.create("daily")
            self.made += 1
            return self.every.total_seconds()
        except Exception:  # a full disk must not end the thread: try again later
            log.exception("the daily backup failed; trying again in %.0f s", self.retry)
            return self.retry
