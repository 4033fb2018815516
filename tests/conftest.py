import os

import pytest

from . import network_guard

# Privacy: nothing in the suite may reach beyond this machine. Guarded from here on (before
# the app's modules are imported); child Pythons get the same guard through sitecustomize.
network_guard.install()

from lumara_web.inference.engine import LlamaEngine  # noqa: E402
from lumara_web.inference.onnx_embedder import OnnxEmbedder, load_embedder  # noqa: E402
from lumara_web.storage import db, migrations  # noqa: E402

from .fakes import FakeEmbedder, FakeEngine  # noqa: E402
from .helpers import WAIT, GatedEngine, LiveServer, build_app  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def network_guard_log(tmp_path_factory):
    """Every Python the tests start (`python app.py`, the benchmark) loads
    tests/guarded_site/sitecustomize.py, which installs the same guard; their refusals are
    written to this file."""
    log_path = tmp_path_factory.mktemp("network-guard") / "blocked.log"
    log_path.touch()
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", network_guard.LOG_ENV)}
    os.environ["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(network_guard.GUARDED_SITE), saved["PYTHONPATH"]) if part)
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
def make_app(tmp_path):
    """make_app(**settings): the app on a fresh data folder under tmp_path ("data", then
    "data1", …; data_dir= names another), FakeEmbedder and FakeEngine unless settings name
    others, once the start-up warm-up is done (see helpers.build_app)."""
    def make(idle_timeout: float = WAIT, **settings):
        data_dir = settings.pop("data_dir", None)
        if data_dir is None:
            data_dir, number = tmp_path / "data", 1
            while data_dir.exists():
                data_dir, number = tmp_path / f"data{number}", number + 1
        return build_app(data_dir, idle_timeout, **settings)
    return make


@pytest.fixture
def app(make_app, embedder, engine):
    return make_app(embedder=embedder, engine=engine)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def serve(make_app):
    """serve(engine=None, embedder=None, **settings): make_app's app on a LiveServer (the
    fakes when engine or embedder is None). Servers stop, and GatedEngines open, at the end."""
    servers = []

    def start(engine=None, embedder=None, **settings) -> LiveServer:
        server = LiveServer(make_app(engine=engine or FakeEngine(),
                                     embedder=embedder or FakeEmbedder(), **settings))
        servers.append(server)
        return server

    yield start
    for server in servers:
        engine = server.app.extensions["lumara"].engine
        if isinstance(engine, GatedEngine):
            engine.open()
        server.stop()


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
