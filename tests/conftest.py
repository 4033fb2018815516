import os
from pathlib import Path

import pytest

from . import network_guard

# Privacy: nothing in the suite may reach beyond this machine. Guarded from here on (before
# the app's modules are imported); child Pythons get the same guard through sitecustomize.
network_guard.install()

from lumara_web import create_app
from lumara_web.inference.engine import LlamaEngine  # noqa: E402
from lumara_web.inference.onnx_embedder import OnnxEmbedder, load_embedder  # noqa: E402
from lumara_web.storage import db, migrations  # noqa: E402

from .fakes import FakeEmbedder, FakeEngine  # noqa: E402

GUARDED_SITE = Path(__file__).resolve().parent / "guarded_site"


@pytest.fixture(scope="session", autouse=True)
def network_guard_log(tmp_path_factory):
    """Every Python the tests start (`python app.py`, the benchmark) loads
    tests/guarded_site/sitecustomize.py, which installs the same guard; their refusals are
    written to this file."""
    log_path = tmp_path_factory.mktemp("network-guard") / "blocked.log"
    log_path.touch()
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", network_guard.LOG_ENV)}
    os.environ["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(GUARDED_SITE), saved["PYTHONPATH"]) if part)
    os.environ[network_guard.LOG_ENV] = str(log_path)
    yield log_path
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True)
def no_outbound_connections(network_guard_log):
    """Fails the test during which anything (here or in a child process) tried to reach
    another machine — even if the code under test swallowed the refusal."""
    in_process = len(network_guard.blocked)
    in_children = network_guard_log.stat().st_size
    yield
    attempts = network_guard.blocked[in_process:]
    with open(network_guard_log, "rb") as log:
        log.seek(in_children)
        attempts += log.read().decode("utf-8", "replace").splitlines()
    if attempts:
        pytest.fail("outbound connection attempted:\n" + "\n".join(attempts), pytrace=False)


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
# on two cores (see lumara_web/inference/engine.py) — several engines in one test process made the
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
