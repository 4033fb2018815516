import pytest

from lumara_web import create_app

from .fakes import FakeEmbedder, FakeEngine


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
