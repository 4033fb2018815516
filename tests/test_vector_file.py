"""Full vectors by memory id in a file (search/vector_file.py): rows read back as written,
in any order; one process writes a file at a time; unused files are cleaned up."""

from __future__ import annotations

import numpy as np
import pytest

from lumara_web.search import vector_file
from lumara_web.search.vector_file import FileBusy, VectorFile


def rows(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, 8)).astype(np.float32)


@pytest.mark.parametrize("folder", ["named", "anonymous"])
def test_rows_read_back_by_id_in_any_order(tmp_path, folder):
    file = VectorFile.create(tmp_path if folder == "named" else None, 8)
    try:
        ids = np.array([7, 3, 4, 5, 20, 1], dtype=np.int64)  # runs and gaps, unsorted
        vectors = rows(len(ids), seed=1)
        file.write(ids, vectors)
        wanted = np.array([20, 1, 4, 5, 3, 7])
        expected = vectors[[4, 5, 2, 3, 1, 0]]
        assert np.array_equal(file.read(wanted), expected)
        assert not file.read(np.array([2, 10])).any(), "rows never written read as zeros"
        file.write(np.array([4]), rows(1, seed=2))  # a row written again
        assert np.array_equal(file.read(np.array([4])), rows(1, seed=2))
        assert np.array_equal(file.read(np.array([5, 3])), vectors[[3, 1]])
    finally:
        file.close()


def test_one_writer_at_a_time_and_unused_files_are_removed(tmp_path):
    first = VectorFile.create(tmp_path, 8)
    first.write(np.array([1, 2]), rows(2, seed=3))
    with pytest.raises(FileBusy):
        VectorFile.open(first.path, 8)
    stale = VectorFile.create(tmp_path, 8)
    stale.close()  # an earlier layout's file, no longer held
    kept = VectorFile.create(tmp_path, 8)
    vector_file.remove_unused(tmp_path, keep={kept.path.name})
    assert first.path.exists(), "a file another writer holds stays"
    assert not stale.path.exists()
    assert kept.path.exists()
    first.close()
    reopened = VectorFile.open(first.path, 8)  # released with its descriptor
    assert np.array_equal(reopened.read(np.array([1, 2])), rows(2, seed=3))
    reopened.close()
    kept.close()
