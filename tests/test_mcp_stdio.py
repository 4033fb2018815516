"""`python -m lumara_web mcp` in a child process, as an MCP client's config file starts it,
with the real embedding model (its ONNX export shared through conftest's embedding_cache_dir,
as tests/live_server.py shares it) and, for ask, the real chat model.

It runs beside a web server on the same data folder: each sees what the other adds, the web
server's in-process vector index catching up from the database's change log."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from lumara_web.inference.onnx_embedder import load_embedder

from .helpers import add, run_async, search
from .live_server import PROJECT_ROOT, WAIT_TIMEOUT

pytestmark = pytest.mark.live_server


@pytest.fixture(scope="module")
def onnx_embedder(embedding_cache_dir):
    """The default embedding model, exported once into the session's shared folder (the
    child processes load that export instead of making their own)."""
    return load_embedder(None, 64, embedding_cache_dir)


def data_folder(tmp_path: Path, embedding_cache_dir: Path) -> Path:
    """A data folder whose models/ is the session's shared embedding export."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "models").symlink_to(embedding_cache_dir, target_is_directory=True)
    return data_dir


def mcp_command(data_dir: Path) -> list[str]:
    return [sys.executable, "-m", "lumara_web", "mcp", "--data-dir", str(data_dir)]


def test_stdio_serves_the_web_servers_data_folder_beside_it(make_app, onnx_embedder,
                                                             embedding_cache_dir, tmp_path):
    data_dir = data_folder(tmp_path, embedding_cache_dir)
    app = make_app(data_dir=data_dir, embedder=onnx_embedder)
    index = app.extensions["lumara"].vector_index
    assert index.wait_ready(WAIT_TIMEOUT)
    web = app.test_client()
    plumber = add(web, "Our plumber comes on Thursday mornings.")["memory"]
    assert [hit["memory"]["id"] for hit in search(web, q="plumber")["results"]] == [plumber["id"]]

    log_path = tmp_path / "mcp-stderr.log"
    parameters = StdioServerParameters(command=mcp_command(data_dir)[0],
                                       args=mcp_command(data_dir)[1:], cwd=PROJECT_ROOT,
                                       env=dict(os.environ))

    async def session():
        with open(log_path, "w") as log:
            async with Client(stdio_client(parameters, errlog=log),
                              read_timeout_seconds=WAIT_TIMEOUT) as client:
                tools = await client.list_tools()
                found = await client.call_tool("search_memories",
                                               {"query": "When does the plumber come?"})
                added = await client.call_tool("add_memory",
                                               {"content": "My sister Dorota lives in Porto."})
                answer = await client.call_tool("ask",
                                                {"question": "Where does my sister Dorota live?"})
                return tools, found, added, answer

    tools, found, added, answer = run_async(session)
    log = log_path.read_text()
    assert len(tools.tools) == 6, log
    for result in (found, added, answer):
        assert not result.is_error, f"{result.content[0].text}\n{log}"

    # The child process found what the web server added...
    assert found.structured_content["results"][0]["memory"]["id"] == plumber["id"]
    # ...and the web server's index, loaded before, found what the child added.
    dorota = added.structured_content["memory"]
    hits = search(web, q="Where does Dorota live?")["results"]
    assert dorota["id"] in [hit["memory"]["id"] for hit in hits]
    readiness = index.readiness()
    assert (readiness["state"], readiness["size"]) == ("ready", 2)

    # ask loaded the chat model then, and answered from the memory it names.
    assert [item["id"] for item in answer.structured_content["memories"]] == [dorota["id"]]
    assert "Porto" in answer.structured_content["answer"]


def test_stdout_carries_only_protocol_messages(onnx_embedder, embedding_cache_dir, tmp_path):
    """Every line the process writes to stdout is a JSON-RPC message, through the loading
    of the embedding model and a tool call; closing stdin ends it cleanly."""
    data_dir = data_folder(tmp_path, embedding_cache_dir)
    log_path = tmp_path / "stderr.log"
    with open(log_path, "wb") as log, subprocess.Popen(
            mcp_command(data_dir), cwd=PROJECT_ROOT, env=dict(os.environ),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log) as process:
        try:
            rest = talk(process)
            assert process.wait(WAIT_TIMEOUT) == 0, log_path.read_text()
        finally:
            if process.poll() is None:
                process.kill()
    assert rest == [], rest  # nothing else was written


def talk(process: subprocess.Popen) -> list[bytes]:
    """Initialize, add a memory, read it back, close stdin; the lines written after the
    last response."""
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()

    def send(message: dict) -> None:
        process.stdin.write(json.dumps(message).encode() + b"\n")
        process.stdin.flush()

    def response(request_id: int) -> dict:
        message = json.loads(lines.get(timeout=WAIT_TIMEOUT))
        assert message["jsonrpc"] == "2.0" and message["id"] == request_id, message
        return message

    send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
          "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                     "clientInfo": {"name": "test", "version": "1"}}})
    assert response(1)["result"]["serverInfo"]["name"] == "lumara"
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    send({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
          "params": {"name": "add_memory", "arguments": {"content": "I like green tea."}}})
    added = response(2)["result"]
    assert not added["isError"] and added["structuredContent"]["memory"]["id"] == 1
    send({"jsonrpc": "2.0", "id": 3, "method": "resources/read",
          "params": {"uri": "memory://1"}})
    [contents] = response(3)["result"]["contents"]
    assert json.loads(contents["text"])["content"] == "I like green tea."
    process.stdin.close()
    rest = []
    while (line := lines.get(timeout=WAIT_TIMEOUT)) is not None:
        rest.append(line)
    return rest
