import pytest

from lumara_web import create_app
from lumara_web.errors import ModelMissing
from lumara_web.inference.bundled import chat_model_path, embedding_model_path

from .fakes import FakeEngine


def test_bundled_embedding_model_is_found_without_a_hub():
    path = embedding_model_path()
    assert (path / "config.json").is_file()
    assert (path / "model.safetensors").is_file()


def test_bundled_chat_model_is_a_gguf_file():
    path = chat_model_path()
    assert path.suffix == ".gguf"
    assert path.read_bytes()[:4] == b"GGUF"


@pytest.mark.parametrize("locate", [embedding_model_path, chat_model_path])
def test_a_missing_configured_model_says_what_to_do(locate, tmp_path):
    with pytest.raises(ModelMissing) as missing:
        locate(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in missing.value.message
    assert "leave it unset" in missing.value.message


def test_app_reports_a_missing_embedding_model_and_refuses_cleanly(tmp_path):
    app = create_app({"data_dir": str(tmp_path), "embedding_model": str(tmp_path / "none"),
                      "model_wait_seconds": 10, "engine": FakeEngine()})
    assert app.extensions["lumara"].embeddings.model.settle(10)
    client = app.test_client()
    health = client.get("/health").get_json()
    assert health["status"] == "error"
    assert health["embedder"]["state"] == "error"
    assert str(tmp_path / "none") in health["embedder"]["error"]
    response = client.post("/api/memories", json={"content": "will not be stored"})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "model_failed"
    assert client.get("/api/memories").get_json()["total"] == 0
