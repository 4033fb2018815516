import pytest

from lumara_web import create_app

from .fakes import FakeEmbedder


@pytest.fixture
def embedder():
    return FakeEmbedder()


@pytest.fixture
def app(tmp_path, embedder):
    return create_app({"data_dir": str(tmp_path / "data"), "embedder": embedder})


@pytest.fixture
def client(app):
    return app.test_client()
