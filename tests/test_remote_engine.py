"""RemoteEngine against a REAL OpenAI-compatible server: llama-cpp-python's own, started on a
loopback port with the bundled GGUF. Few tests: the server and the session's in-process
model share two cores."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import pytest

from lumara_bench.server import free_port
from lumara_web import create_app
from lumara_web.errors import ConfigError
from lumara_web.inference.bundled import chat_model_path
from lumara_web.inference.remote_engine import RemoteEngine
from lumara_web.memory.validation import NewMemory
from lumara_web.storage import db

from .fakes import FakeEmbedder
from .helpers import wait_idle

START_SECONDS = 120  # load of a 135M GGUF on two busy cores: seconds, generous
# `python -m llama_cpp.server`, with llama.cpp's extra (AMX) weight buffers off as in
# LlamaEngine: with them the server died at its first token on this project's machines.
SERVE = """
import runpy, sys
from lumara_web.inference.engine import without_extra_buffer_types
sys.argv[0] = "llama_cpp.server"
with without_extra_buffer_types():
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""
QUESTION = [{"role": "user", "content": "Name three colours of the rainbow."}]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    with open(log_path, "wb") as log_file:
        # 1 thread each: the session's in-process model runs beside it on two cores.
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE, "--model", str(chat_model_path()),
             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
             "--n_threads", "1", "--n_threads_batch", "1"],
            stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def remote(server_url):
    engine = RemoteEngine(url=server_url, n_ctx=2048)
    engine.start()
    assert engine.model.settle(30)
    assert engine.status()["state"] == "ready", engine.status()
    return engine


def ask(engine, messages, **options):
    from lumara_web.inference.engine import GenerationRequest

    return engine.submit(GenerationRequest(messages, **options))


def test_an_answer_streams_in_pieces(remote):
    pieces = list(ask(remote, QUESTION, max_tokens=24))
    assert len(pieces) > 1
    assert "".join(pieces).strip()
    status = remote.status()
    assert status["remote"] == remote.url and status["model"]


def test_stop_ends_the_answer_early(remote):
    job = ask(remote, QUESTION, max_tokens=200)
    pieces = []
    for piece in job:
        pieces.append(piece)
        if len(pieces) == 3:
            job.cancel()
    assert job.finished.wait(10)
    assert 3 <= len(pieces) < 10  # at most a piece in flight after the stop


def test_a_json_schema_request_returns_json_with_the_required_keys(remote, caplog):
    schema = {"type": "object", "properties": {"city": {"type": "string"},
                                               "country": {"type": "string"}},
              "required": ["city", "country"]}
    text = ask(remote, [{"role": "user", "content": "Where is Lisbon? Answer in JSON."}],
               max_tokens=60, json_schema=schema, purpose="extract").text()
    data = json.loads(text)
    assert {"city", "country"} <= set(data)
    # llama-cpp-python's server refuses OpenAI's json_schema form, accepts its own.
    assert "refused response_format json_schema" in caplog.text


def test_an_unreachable_server_is_an_error_naming_the_url():
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    engine = RemoteEngine(url=url, check_timeout=2)
    engine.start()
    assert engine.model.settle(10)  # no hang: refused at once, timeout at worst
    status = engine.status()
    assert status["state"] == "error"
    assert url in status["error"]


def test_an_engine_url_must_be_http_with_a_host(tmp_path):
    for bad in ("ftp://example.org/v1", "localhost:8080", "http:///v1"):
        with pytest.raises(ConfigError, match="engine"):
            create_app({"data_dir": str(tmp_path), "embedder": FakeEmbedder(),
                        "engine_url": bad})


def test_a_chat_turn_through_create_app_answers_from_a_stored_memory(server_url, tmp_path):
    app = create_app({"data_dir": str(tmp_path), "embedder": FakeEmbedder(),
                      "engine_url": server_url})
    services = app.extensions["lumara"]
    engine = services.engine
    assert isinstance(engine, RemoteEngine)
    assert engine.model.settle(30) and engine.model.state == "ready", engine.status()
    wait_idle(engine)
    health = app.test_client().get("/health").get_json()
    assert health["chat_model"]["remote"] == server_url
    conn = db.connect(services.settings["db_path"])
    try:
        services.memories.add(conn, NewMemory(content="My sister Ana lives in Lisbon.",
                                              type="knowledge", tags=[], metadata={}))
        chat = services.chat
        events = list(chat.turn(conn, chat.parse_request(
            {"content": "Where does my sister Ana live?"})))
    finally:
        conn.close()
    events = [event for event in events if event["type"] != "queued"]
    assert events[0]["type"] == "memories" and events[0]["items"]
    tokens = [event["text"] for event in events if event["type"] == "token"]
    assert len(tokens) > 1
    assert events[-1]["type"] == "done" and events[-1]["status"] == "complete"
    assert "Lisbon" in "".join(tokens)


def test_engine_settings_come_from_the_environment_and_are_checked():
    from lumara_web.config import load_settings

    settings = load_settings(environ={"LUMARA_ENGINE_URL": "http://127.0.0.1:8080/v1/",
                                      "LUMARA_ENGINE_API_KEY": "secret"})
    assert settings["engine_url"] == "http://127.0.0.1:8080/v1"
    assert settings["engine_api_key"] == "secret" and settings["engine_model"] is None
    with pytest.raises(ConfigError, match="LUMARA_ENGINE_URL='localhost:8080'"):
        load_settings(environ={"LUMARA_ENGINE_URL": "localhost:8080"})


@pytest.mark.parametrize("url, offline", [
    (None, True), ("http://127.0.0.1:8080/v1", True), ("http://localhost:1/v1", True),
    ("http://[::1]:8080/v1", True), ("http://192.168.1.20:8080/v1", False),
    ("https://gpu.example.org/v1", False)])
def test_health_says_offline_only_while_the_chat_model_stays_on_this_machine(url, offline):
    from lumara_web.web.pages import _stays_on_this_machine

    assert _stays_on_this_machine(url) is offline
