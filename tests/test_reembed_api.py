"""The server's re-embed job (/api/reembed, reembed_job.py) on a real SQLite file: progress to
done, one at a time (409), search during and after, edits during the run, failure, the start
by itself when the stored vectors come from another model."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from lumara_web import create_app
from lumara_web.inference.embeddings import EmbeddingService
from lumara_web.memory.reembed_job import ReembedJob
from lumara_web.storage import db, meta_store, store

from .fakes import FakeEmbedder, FakeEngine, OtherModel
from .helpers import assert_every_vector_made_by, stored_vector, wait_until

# Distinct words in each: the fake embedder finds no two of them near-duplicates.
CONTENTS = [f"memory {a} {b} {c}" for a, b, c in zip(
    ("amber", "basil", "cedar", "dune", "ember", "fjord", "glade", "heron", "iris"),
    ("quartz", "raven", "sable", "thyme", "umber", "violet", "willow", "xenon", "yarrow"),
    ("lantern", "meadow", "nettle", "orchid", "pebble", "quill", "ripple", "saffron",
     "tundra"))]
WAIT = 30


def start_app(data_dir, embedder=None, engine=None):
    """The app as it starts on data_dir, not waited for: several tests restart on one
    folder, and what start-up does (a re-embed by itself) is what they check."""
    return create_app({"data_dir": str(data_dir), "embedder": embedder or FakeEmbedder(),
                       "engine": engine or FakeEngine()})


def add_all(client, contents=CONTENTS) -> list[int]:
    ids = []
    for content in contents:
        response = client.post("/api/memories", json={"content": content})
        assert response.status_code == 201, response.get_json()
        ids.append(response.get_json()["memory"]["id"])
    return ids


def reembed_state(client) -> dict:
    response = client.get("/api/reembed")
    assert response.status_code == 200
    return response.get_json()


def wait_finished(client) -> dict:
    wait_until(lambda: reembed_state(client)["state"] in ("done", "failed"), timeout=WAIT,
               what="the re-embed to finish")
    return reembed_state(client)


def job_of(app):
    return app.extensions["lumara"].reembed


def as_if_made_by_another_model(app) -> None:
    """Replace every stored vector with another model's, and record that model."""
    conn = db.connect(app.extensions["lumara"].settings["db_path"])
    try:
        other = OtherModel()
        store.replace_vectors(conn, [(memory_id, content, other.vector(content))
                                     for memory_id, content in store.memory_contents(conn)])
        meta_store.set_value(conn, meta_store.VECTORS_MODEL, other.model_id)
    finally:
        conn.close()


def open_db(app):
    return db.connect(app.extensions["lumara"].settings["db_path"])


def search_top(client, query: str) -> str:
    response = client.get("/api/memories/search", query_string={"q": query})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"][0]["memory"]["content"]


@pytest.fixture
def gate(monkeypatch):
    """Holds a job after each batch until the test lets it go on (between batches: the
    model and the write lock are free then, as they are for real)."""
    class Gate:
        def __init__(self):
            self.release = threading.Event()
            self.waiting = threading.Event()

        def hold(self, app, batch: int = 2):
            job = job_of(app)
            job.batch = batch
            report = job._report

            def held(done, total):
                report(done, total)
                if 0 < done < total:
                    self.waiting.set()
                    assert self.release.wait(WAIT), "the test never released the job"
            monkeypatch.setattr(job, "_report", held)

        def start_held(self, app, client):
            """Start a re-embed and wait until it is held after its first batch."""
            self.hold(app)
            assert client.post("/api/reembed").status_code == 202
            assert self.waiting.wait(WAIT)

    gate = Gate()
    yield gate
    gate.release.set()


def test_the_job_replaces_every_vector_and_records_the_model(tmp_path):
    app = start_app(tmp_path)
    client = app.test_client()
    add_all(client)
    as_if_made_by_another_model(app)
    assert reembed_state(client)["state"] == "idle"

    response = client.post("/api/reembed")
    assert response.status_code == 202
    started = response.get_json()
    assert started["state"] == "running" and started["reason"] == "requested"
    assert started["started_at"] and started["model"] == FakeEmbedder.model_id

    state = wait_finished(client)
    assert state["state"] == "done", state
    assert state["done"] == state["total"] == state["replaced"] == len(CONTENTS)
    assert state["error"] is None and state["finished_at"] >= state["started_at"]
    conn = open_db(app)
    try:
        fake = FakeEmbedder()
        for memory_id, content in store.memory_contents(conn):
            assert np.allclose(stored_vector(conn, memory_id), fake.vector(content))
        assert meta_store.get_value(conn, meta_store.VECTORS_MODEL) == FakeEmbedder.model_id
    finally:
        conn.close()
    for content in CONTENTS:  # the index followed: each memory is found by its own words
        assert search_top(client, content) == content
    assert client.get("/health").get_json()["reembed"] == state


def test_a_second_start_while_one_runs_is_refused_then_allowed(tmp_path, gate):
    app = start_app(tmp_path)
    client = app.test_client()
    add_all(client)
    gate.start_held(app, client)

    refused = client.post("/api/reembed")
    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert error["code"] == "reembed_running"
    assert "already running" in error["message"] and f"of {len(CONTENTS)}" in error["message"]
    assert reembed_state(client)["state"] == "running"

    gate.release.set()
    assert wait_finished(client)["state"] == "done"
    assert client.post("/api/reembed").status_code == 202
    assert wait_finished(client)["state"] == "done"


def test_search_and_edits_go_on_during_the_job_and_edits_keep_their_fresh_vector(
        tmp_path, gate):
    app = start_app(tmp_path)
    client = app.test_client()
    ids = add_all(client)
    as_if_made_by_another_model(app)
    gate.hold(app, batch=2)
    assert client.post("/api/reembed").status_code == 202
    assert gate.waiting.wait(WAIT)  # the first batch is done; the job is held after it

    during = reembed_state(client)
    assert during["state"] == "running" and during["done"] == 2
    assert during["total"] == len(CONTENTS)
    assert search_top(client, CONTENTS[0]) == CONTENTS[0]  # already re-embedded
    # A memory the job has read but not reached yet is edited: its new vector must stay.
    edited = "memory edited while the job ran zebra yonder"
    response = client.patch(f"/api/memories/{ids[-1]}", json={"content": edited})
    assert response.status_code == 200

    gate.release.set()
    state = wait_finished(client)
    assert state["state"] == "done" and state["done"] == state["total"] == len(CONTENTS)
    assert state["replaced"] == len(CONTENTS) - 1  # the edited one was skipped
    conn = open_db(app)
    try:
        assert np.allclose(stored_vector(conn, ids[-1]), FakeEmbedder().vector(edited))
    finally:
        conn.close()
    assert search_top(client, edited) == edited
    for content in CONTENTS[:-1]:
        assert search_top(client, content) == content


def test_a_failure_is_kept_with_a_clear_error_and_a_new_run_finishes(tmp_path, monkeypatch):
    app = start_app(tmp_path)
    client = app.test_client()
    add_all(client)
    as_if_made_by_another_model(app)
    job_of(app).batch = 4
    replace_vectors = store.replace_vectors
    calls = []

    def disk_fails_on_the_second_batch(conn, vectors):
        calls.append(1)
        if len(calls) == 2:
            raise db.driver()[0].OperationalError("disk I/O error")
        return replace_vectors(conn, vectors)

    monkeypatch.setattr(store, "replace_vectors", disk_fails_on_the_second_batch)
    assert client.post("/api/reembed").status_code == 202
    state = wait_finished(client)
    assert state["state"] == "failed" and state["done"] == 4
    assert "disk I/O error" in state["error"]
    assert f"after 4 of {len(CONTENTS)} memories" in state["error"]
    assert "start it again" in state["error"]
    assert reembed_state(client) == state  # still there for the page to show
    conn = open_db(app)
    try:  # the old model is still on record: the next start would finish the work
        assert meta_store.get_value(conn, meta_store.VECTORS_MODEL) == OtherModel.model_id
    finally:
        conn.close()
    # Meanwhile an export names no model: its vectors are a mix, an import must re-embed.
    assert client.get("/api/export?vectors=1").get_json()["embedding_model"] is None

    monkeypatch.setattr(store, "replace_vectors", replace_vectors)
    assert client.post("/api/reembed").status_code == 202
    state = wait_finished(client)
    assert state["state"] == "done" and state["error"] is None
    assert state["done"] == len(CONTENTS)
    assert client.get("/api/export?vectors=1").get_json()["embedding_model"] == (
        FakeEmbedder.model_id)


def test_a_start_with_another_model_re_embeds_by_itself(tmp_path):
    first = start_app(tmp_path)
    add_all(first.test_client())
    assert reembed_state(first.test_client())["state"] == "idle"  # its own model: nothing to do

    other = OtherModel()
    restarted = start_app(tmp_path, embedder=other)
    client = restarted.test_client()
    state = wait_finished(client)
    assert state["state"] == "done", state
    assert state["reason"] == "model_changed"
    assert state["previous_model"] == FakeEmbedder.model_id and state["model"] == other.model_id
    assert state["done"] == state["total"] == len(CONTENTS)
    assert client.get("/health").get_json()["reembed"]["reason"] == "model_changed"
    conn = open_db(restarted)
    try:
        for memory_id, content in store.memory_contents(conn):
            assert np.allclose(stored_vector(conn, memory_id), other.vector(content))
    finally:
        conn.close()

    again = start_app(tmp_path, embedder=OtherModel())  # the same model again: nothing to do
    assert reembed_state(again.test_client())["state"] == "idle"


class WiderModel(FakeEmbedder):
    """A model of another width (768, as all-mpnet-base-v2 makes)."""

    model_id = "fake/wider"

    def __init__(self):
        super().__init__(dimensions=768)


def test_a_model_of_another_width_rebuilds_the_vectors_at_its_width(tmp_path):
    first = start_app(tmp_path)
    ids = add_all(first.test_client())
    wider = WiderModel()
    restarted = start_app(tmp_path, embedder=wider)
    client = restarted.test_client()
    state = wait_finished(client)
    assert state["state"] == "done", state
    assert state["reason"] == "model_changed" and state["done"] == len(CONTENTS)
    conn = open_db(restarted)
    try:
        assert store.vector_width(conn) == 768
        for memory_id, content in store.memory_contents(conn):
            assert np.allclose(stored_vector(conn, memory_id), wider.vector(content))
    finally:
        conn.close()
    # Search, the chat's recall and an export work at the new width.
    found = client.get("/api/memories/search", query_string={"q": CONTENTS[3]}).get_json()
    assert found["results"][0]["memory"]["id"] == ids[3]
    exported = client.get("/api/export?vectors=1").get_json()
    assert exported["dimensions"] == 768 and exported["embedding_model"] == wider.model_id
    assert len(exported["memories"][0]["embedding"]) == 768
    # Back to the bundled width: rebuilt again, nothing lost.
    back = start_app(tmp_path)
    client = back.test_client()
    assert wait_finished(client)["state"] == "done"
    found = client.get("/api/memories/search", query_string={"q": CONTENTS[5]}).get_json()
    assert found["results"][0]["memory"]["id"] == ids[5]
    assert client.get("/api/memories").get_json()["total"] == len(CONTENTS)


def test_a_model_still_loading_at_start_up_is_compared_once_it_has_loaded(tmp_path):
    app = start_app(tmp_path)
    add_all(app.test_client())
    loaded = threading.Event()
    other = OtherModel()
    embeddings = EmbeddingService(loader=lambda: loaded.wait(WAIT) and other)
    embeddings.start_loading()
    job = ReembedJob(app.extensions["lumara"].settings["db_path"], embeddings)
    waiter = job.start_if_model_changed()
    assert waiter is not None and job.status()["state"] == "idle"  # nothing known yet
    loaded.set()
    waiter.join(WAIT)
    wait_until(lambda: job.status()["state"] == "done", timeout=WAIT, what="the re-embed")
    assert job.status()["previous_model"] == FakeEmbedder.model_id
    assert job.status()["done"] == len(CONTENTS)


def test_a_start_before_the_model_has_loaded_is_refused_until_it_has(tmp_path):
    app = start_app(tmp_path)
    client = app.test_client()
    add_all(client)
    loaded = threading.Event()
    embeddings = EmbeddingService(loader=lambda: loaded.wait(WAIT) and FakeEmbedder())
    embeddings.start_loading()
    job_of(app).embeddings = embeddings
    refused = client.post("/api/reembed")
    assert refused.status_code == 503
    assert refused.get_json()["error"]["code"] == "model_loading"
    assert "still loading" in refused.get_json()["error"]["message"]
    assert reembed_state(client)["state"] == "idle"
    loaded.set()
    assert embeddings.model.settle(WAIT)
    assert client.post("/api/reembed").status_code == 202
    assert wait_finished(client)["state"] == "done"


def test_a_start_with_the_real_model_re_embeds_and_search_finds_by_meaning(
        tmp_path, real_engine, real_embedder):
    contents = ["My sister Anna lives in Lisbon.", "The car needs new winter tyres.",
                "I water the tomatoes every morning at seven."]
    add_all(start_app(tmp_path).test_client(), contents)

    app = start_app(tmp_path, embedder=real_embedder, engine=real_engine)
    client = app.test_client()
    state = wait_finished(client)
    assert state["state"] == "done", state
    assert state["done"] == state["total"] == state["replaced"] == 3
    assert state["model"] == real_embedder.model_id
    conn = open_db(app)
    try:
        assert_every_vector_made_by(conn, real_embedder)
    finally:
        conn.close()
    assert search_top(client, "Where does my sibling live?") == contents[0]
    # Asked for again, it runs the same way (every text is a cache hit now).
    assert client.post("/api/reembed").status_code == 202
    assert wait_finished(client)["replaced"] == 3
