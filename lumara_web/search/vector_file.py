"""Full-precision vectors in a file, one row per memory id, read back with `pread`.

The IVF layout keeps only compressed codes in memory (a million float32 vectors would be
1.5 GB, three times the whole process's budget) and rescores its candidates exactly from
this file. What `pread` reads sits in the operating system's page cache, which is shared,
evictable and not counted in the process's resident memory; a memory-mapped file would be.

Row i holds memory i's unit vector (ids are AUTOINCREMENT, never reused, so rows are dense
apart from deleted memories). The file is a cache like the saved index: the index decides
which rows are live, and a later start checks a sample of rows against SQLite.

One process writes a file at a time: the writer holds an exclusive `flock` on it for as
long as it has it open. Another process (an MCP server on the same data folder) that cannot
take the lock builds its own file rather than share rows it does not control.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import uuid
from pathlib import Path

import numpy as np

from ..storage.private import private_folder

PREFIX = "vectors-"
SUFFIX = ".f32"
# Rows written per pwrite while filling a new file (≈ 6 MB at 384 numbers).
WRITE_ROWS = 4096


class FileBusy(Exception):
    """Another process holds the file."""


class VectorFile:
    """Rows of `width` float32 numbers by memory id."""

    def __init__(self, fd: int, width: int, path: Path | None):
        self._fd = fd
        self.width = width
        self.row_bytes = 4 * width
        self.path = path  # None: an anonymous file, gone when closed

    @classmethod
    def create(cls, folder: Path | None, width: int) -> "VectorFile":
        """A new empty file in `folder` (None: an anonymous temporary file)."""
        if folder is None:
            fd, name = tempfile.mkstemp(prefix=PREFIX, suffix=SUFFIX)
            os.unlink(name)  # gone with its last descriptor
            return cls(fd, width, None)
        private_folder(folder)
        path = folder / f"{PREFIX}{uuid.uuid4().hex[:12]}{SUFFIX}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # new: nobody else has it
        return cls(fd, width, path)

    @classmethod
    def open(cls, path: Path, width: int) -> "VectorFile":
        """An existing file, for writing; FileBusy when another process has it open."""
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FileBusy(f"{path.name} is in use by another process") from None
        return cls(fd, width, path)

    def write(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Store each vector at its id's row; runs of consecutive ids in one write each."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        vectors = np.ascontiguousarray(np.asarray(vectors, dtype="<f4")[order])
        breaks = np.flatnonzero(np.diff(ids) != 1) + 1
        for run in np.split(np.arange(len(ids)), breaks):
            for start in range(0, len(run), WRITE_ROWS):
                rows = run[start:start + WRITE_ROWS]
                data = vectors[rows[0]:rows[-1] + 1].tobytes()
                written = os.pwrite(self._fd, data, int(ids[rows[0]]) * self.row_bytes)
                if written != len(data):
                    raise OSError(f"short write to the vector file ({written} of {len(data)})")

    def read(self, ids: np.ndarray) -> np.ndarray:
        """The rows of `ids`, in that order (zeros for a row never written); runs of
        consecutive ids in one read each."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.zeros((len(ids), self.width), dtype=np.float32)
        if not len(ids):
            return out
        view = memoryview(out).cast("B")
        row = self.row_bytes
        breaks = np.flatnonzero(np.diff(ids) != 1) + 1
        for start, end in zip([0, *breaks.tolist()], [*breaks.tolist(), len(ids)]):
            os.preadv(self._fd, [view[start * row:end * row]], int(ids[start]) * row)
        return out

    def sync(self) -> None:
        os.fsync(self._fd)

    @property
    def size_bytes(self) -> int:
        return os.fstat(self._fd).st_size

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # releases the lock
            self._fd = -1


def remove_unused(folder: Path, keep: set[str]) -> None:
    """Delete the vector files in `folder` that are neither in `keep` nor held by a process
    (an earlier layout's file, or one left by a process that was killed)."""
    for path in folder.glob(f"{PREFIX}*{SUFFIX}"):
        if path.name in keep:
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # in use
        else:
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)
