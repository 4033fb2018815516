"""The data folder is for the person running Lumara alone: it holds every memory, the
conversations and the access token, so other users of the computer may not read it.
Folders are 0700 and files 0600; a folder made before Lumara did this is tightened at
start-up."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(path: Path) -> Path:
    """`path` as a folder only its owner can enter. Parents it has to make are private too;
    those that exist are left as they are."""
    path = Path(path)
    for folder in reversed([path, *path.parents]):
        if not folder.exists():
            folder.mkdir(mode=FOLDER_MODE, exist_ok=True)
    return path


def create_private_file(path: Path) -> None:
    """Create `path` empty and 0600 unless it exists, so that whoever writes it next (SQLite,
    which gives its -wal and -shm files the database's mode) starts from a private file."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        pass


def write_private_text(path: Path, text: str) -> None:
    """Write `text` to `path`, which only its owner may read (an export holds every memory)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)


def make_private(folder: Path) -> list[Path]:
    """Tighten `folder` and everything in it that others could read or enter; returns what
    was changed. Symbolic links are neither followed nor changed (a linked folder belongs
    to whoever made the link)."""
    folder = private_folder(folder)
    changed = []
    for path in [folder, *_walk(folder)]:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:  # removed meanwhile
            continue
        if stat.S_ISLNK(mode) or not mode & 0o077:
            continue
        wanted = FOLDER_MODE if stat.S_ISDIR(mode) else FILE_MODE
        try:
            path.chmod(stat.S_IMODE(mode) & wanted)
        except OSError as error:  # another user's file: say so, never fail the start
            log.warning("could not make %s private: %s", path, error)
            continue
        changed.append(path)
    if changed:
        log.warning("made %d item(s) in %s readable by you alone (they were open to other "
                    "users of this computer): %s", len(changed), folder,
                    ", ".join(str(path.relative_to(folder)) for path in changed[:5])
                    + (", …" if len(changed) > 5 else ""))
    return changed


def _walk(folder: Path):
    for root, dirs, files in os.walk(folder):  # os.walk does not follow links by default
        for name in dirs + files:
            yield Path(root) / name
