"""`python app.py` on an empty data dir, as a user runs it: real process, real models."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(base, path, body=None, method=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


class Server:
    def __init__(self, data_dir: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, HF_HUB_OFFLINE="0")  # Lumara must force offline itself
        self.process = subprocess.Popen(
            [sys.executable, "app.py", "--data-dir", str(data_dir), "--port", str(self.port)],
            cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait_until(self, status: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stdout.read().decode()
            try:
                code, health = request(self.base, "/health")
                if health["status"] == status:
                    return health
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"/health never reached {status!r}")

    def stop(self):
        self.process.terminate()
        self.process.wait(30)
        self.process.stdout.close()


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "fresh" / "lumara"


def test_app_serves_health_and_the_api_on_the_real_model_and_caches_across_restarts(data_dir):
    server = Server(data_dir)
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

    restarted = Server(data_dir)
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
