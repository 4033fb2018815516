"""The data folder is readable by its owner alone: made 0700 with files 0600, and an older
folder that others could read is tightened at start-up, with a log line."""

from __future__ import annotations

import logging
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np

from lumara_web.search import index_file
from lumara_web.storage import db
from lumara_web.storage.private import make_private

from .helpers import add, build_app

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def open_to_others(folder: Path) -> list[str]:
    """Every item under `folder` (itself included) that another user could read or enter,
    symbolic links aside."""
    items = [folder, *folder.rglob("*")]
    return [f"{item.relative_to(folder)} {oct(mode(item))}" for item in items
            if not item.is_symlink() and mode(item) & 0o077]


def test_a_new_data_folder_is_private_from_the_start(tmp_path):
    data_dir = tmp_path / "lumara"
    app = build_app(data_dir)
    add(app.test_client(), "My passport number is X1234567.")
    assert {path.name for path in data_dir.iterdir()} >= {"lumara.db", "lumara.db-wal",
                                                          "lumara.db-shm"}
    assert mode(data_dir) == 0o700
    assert open_to_others(data_dir) == []


def test_an_older_folder_is_tightened_at_start_up_and_says_so(tmp_path, caplog):
    data_dir = tmp_path / "lumara"  # as Lumara made it before: open to every local user
    data_dir.mkdir(mode=0o755)
    db.connect(data_dir / "lumara.db").close()
    (data_dir / "index").mkdir(mode=0o755)
    (data_dir / "index" / "ids.npy").write_bytes(b"\x93NUMPY")
    for path in [data_dir, *data_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    with caplog.at_level(logging.WARNING, logger="lumara_web.storage.private"):
        build_app(data_dir)
    assert open_to_others(data_dir) == []
    assert "readable by you alone" in caplog.text and "lumara.db" in caplog.text


def test_a_linked_folder_is_neither_followed_nor_changed(tmp_path):
    shared = tmp_path / "shared-models"
    shared.mkdir(mode=0o755)
    (shared / "model.onnx").write_text("weights")
    (shared / "model.onnx").chmod(0o644)
    data_dir = tmp_path / "lumara"
    data_dir.mkdir(mode=0o755)
    (data_dir / "models").symlink_to(shared, target_is_directory=True)
    changed = make_private(data_dir)
    assert changed == [data_dir] and mode(data_dir) == 0o700
    assert mode(shared) == 0o755 and mode(shared / "model.onnx") == 0o644


def test_an_exported_file_is_private_even_when_it_existed(tmp_path):
    data_dir = tmp_path / "lumara"
    add(build_app(data_dir).test_client(), "My passport number is X1234567.")
    output = tmp_path / "export.json"
    output.write_text("old")
    output.chmod(0o644)
    subprocess.run([sys.executable, "-m", "lumara_web", "export", "--data-dir", str(data_dir),
                    "--output", str(output)], cwd=PROJECT_ROOT, check=True,
                   capture_output=True)
    assert "X1234567" in output.read_text() and mode(output) == 0o600


def test_a_saved_index_is_private_while_it_is_being_written(tmp_path, monkeypatch):
    modes_while_writing = []
    save_array = index_file._save_array

    def watched(path, array):
        modes_while_writing.append(mode(path))
        save_array(path, array)

    monkeypatch.setattr(index_file, "_save_array", watched)
    saved = index_file.Saved("exact", 1, 4, {}, {"ids": np.arange(3),
                                                  "vectors": np.ones((3, 4), np.float32)})
    index_file.save(tmp_path / "index", saved, "database")
    assert modes_while_writing == [0o600, 0o600]
    assert open_to_others(tmp_path / "index") == []
