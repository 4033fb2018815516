"""`python app.py` on an empty data dir, as a user runs it: real process, real models."""

import pytest

from .live_server import AppProcess, request

pytestmark = pytest.mark.live_server


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "fresh" / "lumara"


def test_app_serves_health_and_the_api_on_the_real_model_and_caches_across_restarts(data_dir):
    server = AppProcess(data_dir)
    try:
        early = server.wait_until("starting", timeout=60)  # answers while the model loads
        assert early["embedder"]["state"] == "loading"
        ready = server.wait_until("ok")
        assert ready["embedder"]["model"] == "sentence-transformers/all-MiniLM-L6-v2"
        assert ready["database"]["sqlite_vec_version"].startswith("v")
        code, added = request(server.base, "/api/memories",
                              {"content": "My sister Ana lives in Lisbon.", "type": "experience",
                               "tags": ["family"]})
        assert code == 201 and added["memory"]["id"] == 1
        code, found = request(server.base, "/api/memories/search?q=Where%20does%20my%20sister%20live")
        assert code == 200 and found["results"][0]["memory"]["id"] == 1
        code, error = request(server.base, "/api/memories", {"content": "  "})
        assert code == 400 and error["error"]["code"] == "empty_content"
    finally:
        server.stop()
    assert (data_dir / "lumara.db").is_file()

    restarted = AppProcess(data_dir)
    try:
        restarted.wait_until("ok")
        code, check = request(restarted.base, "/api/memories/check",
                              {"content": "My sister Ana lives in Lisbon."})
        assert code == 200 and check["duplicates"][0]["memory"]["id"] == 1
        _, health = request(restarted.base, "/health")
        assert health["embedder"]["counters"]["cache_hits"] == 1
        assert health["embedder"]["counters"]["computed"] == 0
        assert health["database"]["memories"] == 1
    finally:
        restarted.stop()
