"""Re-embedding every memory after a model change: vectors, the index and progress."""

import numpy as np

from lumara_web import cli
from lumara_web.inference.embeddings import EmbeddingService
from lumara_web.memory.reembed import progress_bar, reembed_all
from lumara_web.memory.validation import NewMemory
from lumara_web.storage import db, store

from .fakes import OtherModel
from .helpers import assert_every_vector_made_by, build_app, stored_vector

CONTENTS = [f"Memory {word} about the garden" for word in
            ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf")]


def app_with_memories(tmp_path):
    services = build_app(tmp_path).extensions["lumara"]
    conn = db.connect(services.settings["db_path"])
    for content in CONTENTS:
        services.memories.add(conn, NewMemory(content, "knowledge", [], {}))
    return services, conn


def test_every_vector_is_replaced_in_batches_and_the_index_follows(tmp_path):
    services, conn = app_with_memories(tmp_path)
    other = OtherModel()
    calls = []
    try:
        replaced = reembed_all(conn, EmbeddingService(embedder=other), batch=3,
                               progress=lambda done, total: calls.append((done, total)))
        assert replaced == len(CONTENTS)
        assert calls == [(0, 7), (3, 7), (6, 7), (7, 7)]
        for memory_id, content in store.memory_contents(conn):
            assert np.allclose(stored_vector(conn, memory_id), other.vector(content))
        # The in-process index re-read them: a query made by the new model finds each one.
        for memory_id, content in store.memory_contents(conn):
            hits = services.memories.nearest(conn, other.vector(content), k=1, threshold=0.99)
            assert [hit.memory.id for hit in hits] == [memory_id]
    finally:
        conn.close()


def test_a_memory_edited_since_it_was_read_keeps_its_own_fresh_vector(tmp_path):
    services, conn = app_with_memories(tmp_path)
    try:
        memory_id, content = store.memory_contents(conn)[0]
        before = stored_vector(conn, memory_id)
        stale = [(memory_id, content + " (old text)", OtherModel().vector(content))]
        assert store.replace_vectors(conn, stale) == 0
        assert np.array_equal(stored_vector(conn, memory_id), before)
        assert store.replace_vectors(conn, [(10_000, "gone", before)]) == 0  # deleted
    finally:
        conn.close()


def test_the_command_re_embeds_with_the_real_model_and_shows_progress(
        tmp_path, embedding_cache_dir, real_embedder, capsys):
    services, conn = app_with_memories(tmp_path)
    conn.close()
    (tmp_path / "models").symlink_to(embedding_cache_dir)  # the session's one ONNX export
    cli.main(["reembed", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert progress_bar(7, 7) in err and "7 memories re-embedded" in err
    conn = db.connect(services.settings["db_path"])
    try:
        assert_every_vector_made_by(conn, real_embedder)
    finally:
        conn.close()


def test_progress_bar():
    assert progress_bar(0, 4, width=4) == "[....] 0/4"
    assert progress_bar(2, 4, width=4) == "[##..] 2/4"
    assert progress_bar(1000, 1000, width=2) == "[##] 1,000/1,000"
    assert progress_bar(0, 0, width=2) == "[##] 0/0"
