import pytest

from lumara_web import create_app, db, migrations
from lumara_web.embeddings import SentenceTransformerEmbedder
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
def real_embedder(real_engine):
    embedder = SentenceTransformerEmbedder.load()
    real_engine.run_task(lambda: embedder.embed(["warm up"]))  # first use on that thread
    return embedder
