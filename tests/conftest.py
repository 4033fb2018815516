import pytest

from lumara_web import create_app, db, migrations
from lumara_web.onnx_embedder import OnnxEmbedder, load_embedder
from lumara_web.engine import LlamaEngine

from .fakes import FakeEmbedder, FakeEngine


@pytest.fixture
def conn(tmp_path):
    """A connection to a freshly migrated SQLite file (store-level tests; modules that need
    the app's database define their own `conn`)."""
    connection = db.connect(tmp_path / "lumara.db")
    migrations.migrate(connection)
    yield connection
    connection.close()


@pytest.fixture
def embedder():
    return FakeEmbedder()


@pytest.fixture
def engine():
    return FakeEngine()


@pytest.fixture
def app(tmp_path, embedder, engine):
    return create_app({"data_dir": str(tmp_path / "data"), "embedder": embedder,
                       "engine": engine})


@pytest.fixture
def client(app):
    return app.test_client()


# The real models, loaded once for the whole session and shared by every test that uses
# them. One engine means one inference thread: torch and llama.cpp share one OpenMP runtime,
# and every extra thread that runs a model adds a thread pool that throttles all the others
# on two cores (see lumara_web/engine.py) — several engines in one test process made the
# real-model tests three times slower.
@pytest.fixture(scope="session")
def real_engine():
    engine = LlamaEngine()
    engine.start()
    assert engine.model.settle(120), "the chat model did not load"
    assert engine.model.state == "ready", engine.model.error
    return engine


@pytest.fixture(scope="session")
def embedding_cache_dir(tmp_path_factory):
    """Where the session's one ONNX export of the embedding model goes (~8 s, once)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def real_embedder(real_engine, embedding_cache_dir):
    """The embedder the app loads by default (ONNX Runtime, exported on first use)."""
    embedder = load_embedder(None, 64, embedding_cache_dir)
    assert isinstance(embedder, OnnxEmbedder), "the ONNX embedder did not load"
    real_engine.run_task(lambda: embedder.embed(["warm up"]))  # first use on that thread
    return embedder
