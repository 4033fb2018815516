"""The in-process vector index saved beside the database, so a later start loads it instead
of reading every vector from SQLite and rebuilding (at 100,000 memories, seconds).

A saved index is a cache, never the truth: it records the change-log position it reflects
(`seq`), the database it was built from (`database_id` in the meta table), its width and
layout, and a CRC-32 of every file. It is used only when all of them match and the change log
still holds every change since `seq` (the caller then applies those changes); a missing,
stale, damaged or foreign file is ignored with a log line, and the index is rebuilt from
SQLite in the background as before. Files are written under temporary names and renamed;
`meta.json` goes last, so a save interrupted at any point leaves the previous one, or none.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..storage import meta_store
from ..storage.private import private_folder, write_private_text

log = logging.getLogger(__name__)

FORMAT = 2  # 2: the IVF layout holds PQ codes, its vectors in a vector file
FOLDER = "saved"
META = "meta.json"
_CHUNK = 1 << 22  # bytes read per step while checking a file's CRC


@dataclass
class Saved:
    """What a saved index holds. `arrays`: name → array (exact layout: ids, codes,
    vectors; IVF: type_of, by memory id); `faiss_index` for the IVF layout, whose full
    vectors stay in their own file (vector_file.py: written as memories change, so not
    covered by a CRC; the loader compares a sample of it with SQLite)."""

    layout: str  # "exact" | "ivf"
    seq: int
    width: int
    type_codes: dict[str, int]
    arrays: dict[str, np.ndarray]
    faiss_index: Any = None  # an index, or its bytes (faiss.serialize_index)
    trained_size: int = 0
    vector_file: str | None = None  # IVF: the name of its vector file (vector_file.py)


def database_id(conn: Any) -> str | None:
    """This database's identity, given when it was prepared: a saved index from another
    database (a data folder copied, or its database replaced) never matches it. None when
    it cannot be read or given (a database busy or read-only: then nothing is saved or
    loaded, as without a data folder)."""
    try:
        return meta_store.database_id(conn)
    except Exception as error:  # the driver's own error types: a cache must not fail a load
        log.warning("the vector index is not saved or loaded: %s", error)
        return None


def save(cache_dir: Path, saved: Saved, database: str) -> None:
    """Write `saved` for the database `database` (its database_id). Failures are logged:
    the next start rebuilds, as without a saved index."""
    folder = cache_dir / FOLDER
    try:
        private_folder(folder)
        _remove_abandoned(folder)
        (folder / META).unlink(missing_ok=True)  # from here on, the files are not trusted
        files = {}
        for name, array in saved.arrays.items():
            files[f"{name}.npy"] = _write(folder / f"{name}.npy",
                                          lambda path, a=array: _save_array(path, a))
        if saved.faiss_index is not None:
            import faiss

            if isinstance(saved.faiss_index, np.ndarray):
                files["ivf.faiss"] = _write(folder / "ivf.faiss",
                                            lambda path: path.write_bytes(saved.faiss_index))
            else:
                files["ivf.faiss"] = _write(folder / "ivf.faiss", lambda path: faiss.write_index(
                    saved.faiss_index, str(path)))
        meta = {"format": FORMAT, "layout": saved.layout, "seq": saved.seq,
                "width": saved.width, "database_id": database,
                "type_codes": saved.type_codes, "trained_size": saved.trained_size,
                "vector_file": saved.vector_file, "files": files}
        partial = folder / f"{META}.{os.getpid()}.partial"
        write_private_text(partial, json.dumps(meta))
        os.replace(partial, folder / META)
    except (OSError, RuntimeError, ValueError) as error:
        log.warning("could not save the vector index in %s: %s", folder, error)


def load(cache_dir: Path, *, database: str, width: int, current_seq: int) -> Saved | None:
    """The saved index for this database and width, or None (and why, in the log)."""
    folder = cache_dir / FOLDER
    try:
        meta = json.loads((folder / META).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        return _unusable(folder, f"its description cannot be read ({error})")
    if meta.get("format") != FORMAT or meta.get("database_id") != database:
        return _unusable(folder, "it was saved for another database or by another version")
    if meta.get("width") != width:
        return _unusable(folder, f"its vectors have {meta.get('width')} numbers, the "
                                 f"database's {width}")
    if not isinstance(meta.get("seq"), int) or meta["seq"] > current_seq:
        return _unusable(folder, "it is newer than the database (was the database replaced "
                                 "by an older copy?)")
    try:
        for name, expected in meta["files"].items():
            if _crc(folder / name) != expected:
                return _unusable(folder, f"{name} is damaged (its checksum differs)")
        arrays = {name.removesuffix(".npy"): np.load(folder / name, allow_pickle=False)
                  for name in meta["files"] if name.endswith(".npy")}
        faiss_index = None
        if "ivf.faiss" in meta["files"]:
            import faiss

            faiss_index = faiss.read_index(str(folder / "ivf.faiss"))
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        return _unusable(folder, f"it cannot be read ({error})")
    return Saved(meta["layout"], meta["seq"], width, dict(meta["type_codes"]), arrays,
                 faiss_index, int(meta.get("trained_size", 0)), meta.get("vector_file"))


def _write(path: Path, writer: Any) -> int:
    """Write through `writer(path)` under a temporary name, then rename; the file's CRC."""
    # Named by process: another process saving the same folder never writes into it.
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    # Private before the first byte: vectors say what the memories say.
    write_private_text(partial, "")
    writer(partial)
    with open(partial, "rb") as file:
        os.fsync(file.fileno())
    checksum = _crc(partial)
    os.replace(partial, path)
    return checksum


def _remove_abandoned(folder: Path) -> None:
    """Delete the temporary files of saves whose process has ended (killed mid-save): at a
    million memories, one is 1.5 GB."""
    for partial in folder.glob("*.partial"):
        pid = partial.suffixes[-2].lstrip(".") if len(partial.suffixes) >= 2 else ""
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            partial.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _save_array(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as file:  # a file object: np.save would append ".npy" to a name
        np.save(file, array, allow_pickle=False)


def _crc(path: Path) -> int:
    checksum = 0
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            checksum = zlib.crc32(chunk, checksum)
    return checksum


def _unusable(folder: Path, why: str) -> None:
    log.warning("not using the saved vector index in %s: %s; rebuilding it from the "
                "database", folder, why)
    return None
