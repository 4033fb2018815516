"""Whether a Lumara server is using a data folder. The server holds a shared lock on
<data dir>/server.lock while it runs (the OS drops it when the process ends, however it
ends); a command-line restore, which replaces the database under a running server's feet,
asks for the lock exclusively and is refused while a server holds it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from .private import FILE_MODE, private_folder

LOCK_FILE = "server.lock"


def _open(data_dir: Path) -> IO[bytes]:
    private_folder(Path(data_dir))
    fd = os.open(Path(data_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT, FILE_MODE)
    return os.fdopen(fd, "r+b")


def hold_while_serving(data_dir: Path) -> IO[bytes]:
    """Mark the folder as served until this process ends (keep the returned file open)."""
    lock = _open(data_dir)
    fcntl.flock(lock, fcntl.LOCK_SH)  # shared: servers and MCP beside them do not exclude
    return lock


def no_server_running(data_dir: Path) -> IO[bytes] | None:
    """The folder's lock held exclusively (keep it open until done), or None while a
    server runs on the folder."""
    lock = _open(data_dir)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock
