"""The MCP server through the SDK's own client: over Streamable HTTP at /mcp on a live server
with the fakes (every tool, the memory resource, bad arguments, the security checks), and
in-process for the stdio command's services (no chat model until ask). The stdio transport
in a real child process is tests/test_mcp_stdio.py."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from lumara_web import create_app
from lumara_web.config import load_settings
from lumara_web.mcp.server import build_server
from lumara_web.mcp.stdio import lazy_services, loading
from lumara_web.storage import meta_store

from .fakes import FakeEmbedder, FakeEngine, OtherModel
from .helpers import (
    FACT,
    FACT_VARIANT,
    UNRELATED,
    WAIT,
    api_snapshot,
    run_async,
    snapshot,
    wait_until,
)
from .live_server import request

TOOLS = {"search_memories", "add_memory", "update_memory", "delete_memory", "recent_memories",
         "ask"}
# A tools/list request as a client sends it, for the requests made without the SDK.
LIST_TOOLS = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()


@pytest.fixture
def live(serve):
    """The app on a loopback port with the fakes; its MCP transport stops at the end."""
    server = serve()
    yield server
    bridge = server.app.extensions.get("lumara_mcp")
    if bridge is not None:
        bridge.close()


def over_http(live, work, **client_options):
    """work(client) with the SDK's client connected to `live`'s /mcp; its result."""
    async def run():
        async with Client(live.base + "/mcp", read_timeout_seconds=WAIT,
                          **client_options) as client:
            return await work(client)
    return run_async(run)


def call(live, tool: str, arguments: dict):
    async def work(client):
        return await client.call_tool(tool, arguments)
    return over_http(live, work)


def result_of(live, tool: str, arguments: dict) -> dict:
    """A tool's structured result; the call must have succeeded."""
    result = call(live, tool, arguments)
    assert not result.is_error, result.content[0].text
    # The text a client shows its model is the same JSON.
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def rest(live, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    return request(live.base, path, body, method, timeout=WAIT)


def raw_post(live, headers: dict) -> tuple[int, dict]:
    """A POST to /mcp without the SDK, with `headers` added to a client's own."""
    request = urllib.request.Request(
        live.base + "/mcp", data=LIST_TOOLS, method="POST",
        headers={"Content-Type": "application/json",
                 "Accept": "application/json, text/event-stream", **headers})
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


# -- listing ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_lists_every_tool_and_the_memory_resource_template(live, mode):
    """Clients of the current protocol and of the 2025 handshake both connect."""
    async def work(client):
        return await client.list_tools(), await client.list_resource_templates()

    tools, templates = over_http(live, work, mode=mode)
    assert {tool.name for tool in tools.tools} == TOOLS
    for tool in tools.tools:
        assert tool.description and tool.input_schema["type"] == "object"
    add = next(tool for tool in tools.tools if tool.name == "add_memory")
    assert add.input_schema["required"] == ["content"]
    assert add.input_schema["properties"]["type"]["enum"] == ["knowledge", "experience",
                                                              "method"]
    search = next(tool for tool in tools.tools if tool.name == "search_memories")
    assert search.annotations.read_only_hint
    [template] = templates.resource_templates
    assert template.uri_template == "memory://{id}"
    assert template.mime_type == "application/json"


# -- every tool ---------------------------------------------------------------------------
def test_add_memory_reports_what_the_rest_api_reports(live):
    first = result_of(live, "add_memory", {"content": FACT, "tags": ["Coast", "coast"]})
    assert first["memory"]["content"] == FACT
    assert first["memory"]["tags"] == ["coast"]  # normalized as the REST API does
    assert first["memory"]["source"] == "mcp"
    assert first["duplicates"] == first["contradiction_candidates"] == []

    # What adding the variant would report, asked of the REST API (which writes nothing).
    status, expected = rest(live, "POST", "/api/memories/check", {"content": FACT_VARIANT})
    assert status == 200
    variant = result_of(live, "add_memory", {"content": FACT_VARIANT, "type": "experience"})
    assert variant["memory"]["type"] == "experience"
    assert {"duplicates": variant["duplicates"],
            "contradiction_candidates": variant["contradiction_candidates"]} == expected
    assert [hit["memory"]["id"] for hit in variant["contradiction_candidates"]] == \
        [first["memory"]["id"]]

    again = result_of(live, "add_memory", {"content": FACT})
    assert first["memory"]["id"] in [hit["memory"]["id"] for hit in again["duplicates"]]


def test_search_update_recent_and_the_resource(live):
    fact = result_of(live, "add_memory", {"content": FACT})["memory"]
    other = result_of(live, "add_memory", {"content": UNRELATED, "type": "method"})["memory"]

    found = result_of(live, "search_memories", {"query": "lighthouse keeper paints"})
    assert [hit["memory"]["id"] for hit in found["results"]][:1] == [fact["id"]]
    assert result_of(live, "search_memories",
                     {"query": "lighthouse keeper paints", "type": "method"})["results"] == []
    assert len(result_of(live, "search_memories", {"query": "quarks gluons", "k": 1})
               ["results"]) == 1

    updated = result_of(live, "update_memory", {"id": fact["id"], "tags": ["coast"],
                                                "content": FACT + " daily"})["memory"]
    assert (updated["content"], updated["tags"]) == (FACT + " daily", ["coast"])
    status, history = rest(live, "GET", f"/api/memories/{fact['id']}/history")
    assert status == 200 and [version["content"] for version in history["versions"]] == [FACT]

    recent = result_of(live, "recent_memories", {"limit": 1})
    assert recent["total"] == 2 and [item["id"] for item in recent["items"]] == [other["id"]]
    assert [item["id"] for item in result_of(live, "recent_memories", {})["items"]] == \
        [other["id"], fact["id"]]

    async def read(client):
        return await client.read_resource(f"memory://{fact['id']}")

    [contents] = over_http(live, read).contents
    assert contents.mime_type == "application/json"
    assert json.loads(contents.text) == updated


def test_delete_goes_to_the_trash_and_the_page_can_undo_it(live):
    memory = result_of(live, "add_memory", {"content": FACT})["memory"]
    deleted = result_of(live, "delete_memory", {"id": memory["id"]})
    assert deleted["deleted"] == memory
    assert rest(live, "GET", f"/api/memories/{memory['id']}")[0] == 404
    status, trash = rest(live, "GET", "/api/trash")
    assert status == 200 and [item["id"] for item in trash["items"]] == [memory["id"]]

    status, restored = rest(live, deleted["undo"]["method"], deleted["undo"]["url"])
    assert status == 201 and restored["memory"] == memory


def test_ask_answers_from_the_memories_with_its_receipt_and_stores_nothing(live):
    memory = result_of(live, "add_memory", {"content": "My dog is called Rex."})["memory"]
    before = api_snapshot(live.app)  # (the question's embedding is cached, as any search's)
    engine = live.app.extensions["lumara"].engine
    engine.enqueue("Your dog is called Rex.")

    answer = result_of(live, "ask", {"question": "What is my dog called?"})

    assert answer["answer"] == "Your dog is called Rex."
    assert [item["id"] for item in answer["memories"]] == [memory["id"]]
    assert answer["memories"][0]["content"] == "My dog is called Rex."
    # The model was given the memory; no conversation, no extracted memory.
    assert "Rex" in json.dumps(engine.requests[-1].messages)
    assert api_snapshot(live.app) == before


def test_ask_says_so_when_no_memory_answers_a_personal_question(live):
    answer = result_of(live, "ask", {"question": "What is my cat's name?"})
    assert answer["memories"] == []
    assert "cat" in answer["answer"].lower()


# -- bad input ----------------------------------------------------------------------------
BAD_CALLS = [
    ("add_memory", {"content": "   "}, "content is empty"),
    ("add_memory", {}, "content: Field required"),
    ("add_memory", {"content": FACT, "type": "fact"},
     "type: Input should be 'knowledge', 'experience' or 'method' (got 'fact')"),
    ("add_memory", {"contnet": FACT}, "unknown argument(s) contnet. It takes: content, type"),
    ("add_memory", {"content": FACT, "tags": "coast"}, "tags"),
    ("add_memory", {"content": FACT, "tags": [f"t{n}" for n in range(21)]},
     "21 tags given; the limit is 20"),
    ("add_memory", {"content": "x" * 10_001}, "content is 10,001 characters"),
    ("search_memories", {"query": ""}, "q is required"),
    ("search_memories", {"query": "tea", "k": 0}, "k=0 is out of range; use 1 to 100"),
    ("search_memories", {"query": "tea", "k": "many"}, "k: Input should be a valid integer"),
    ("update_memory", {"id": 999, "content": FACT},
     "No memory has id 999. search_memories or recent_memories give the memories' ids"),
    ("update_memory", {"id": 1}, "Nothing to change: send content, type or tags"),
    ("update_memory", {"id": 2**70, "type": "method"}, "No memory has id"),
    ("delete_memory", {"id": 0}, "No memory has id 0"),
    ("delete_memory", {"id": "one"}, "id: Input should be a valid integer"),
    ("recent_memories", {"limit": 1000}, "limit=1000 is out of range; use 1 to 200"),
    ("ask", {"question": ""}, "question is empty"),
    ("no_such_tool", {}, "no_such_tool"),
]


@pytest.mark.parametrize("tool, arguments, message", BAD_CALLS,
                         ids=[f"{tool}-{index}" for index, (tool, _, _) in
                              enumerate(BAD_CALLS)])
def test_bad_arguments_are_tool_errors_that_say_why_and_change_nothing(live, tool, arguments,
                                                                       message):
    result_of(live, "add_memory", {"content": UNRELATED})  # id 1
    before = api_snapshot(live.app)
    engine = live.app.extensions["lumara"].engine
    asked = len(engine.requests)

    result = call(live, tool, arguments)

    assert result.is_error
    assert message in result.content[0].text
    assert api_snapshot(live.app) == before
    assert len(engine.requests) == asked


def test_reading_a_memory_that_is_not_there_says_how_to_find_one(live):
    async def read(client, uri):
        try:
            await client.read_resource(uri)
        except MCPError as error:
            return error
        raise AssertionError(f"{uri} was read")

    async def work(client):
        return await read(client, "memory://404"), await read(client, "memory://abc")

    missing, malformed = over_http(live, work)
    assert "No memory has id 404" in str(missing)
    assert "search_memories or recent_memories" in str(missing)
    assert "a whole number" in str(malformed)


# -- the checks every route passes --------------------------------------------------------
def test_a_request_from_another_site_is_refused_and_changes_nothing(live):
    before = snapshot(live.app)
    status, body = raw_post(live, {"Origin": "http://evil.example"})
    assert (status, body["error"]["code"]) == (403, "cross_origin_request")
    status, body = raw_post(live, {"Sec-Fetch-Site": "cross-site"})
    assert (status, body["error"]["code"]) == (403, "cross_site_request")
    assert snapshot(live.app) == before
    # Refused before the MCP transport was even started.
    assert "lumara_mcp" not in live.app.extensions


def test_a_foreign_host_name_gets_421(live):
    status, body = raw_post(live, {"Host": "evil.example"})
    assert (status, body["error"]["code"]) == (421, "host_not_allowed")


def test_the_own_origin_and_scripts_without_one_are_answered(live):
    status, body = raw_post(live, {"Origin": live.base})
    assert status == 200 and {tool["name"] for tool in body["result"]["tools"]} == TOOLS
    status, body = raw_post(live, {})
    assert status == 200


def test_only_posts_are_served(live):
    request = urllib.request.Request(live.base + "/mcp")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=WAIT)
    with refused.value:
        assert refused.value.code == 405
        assert json.loads(refused.value.read())["error"]["code"] == "method_not_allowed"


def test_off_the_loopback_the_client_needs_the_access_token(serve):
    live = serve(host="0.0.0.0")
    try:
        token = live.app.extensions["lumara"].access.token
        status, body = raw_post(live, {})
        assert (status, body["error"]["code"]) == (401, "token_required")

        async def run():
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"})
            async with http, Client(streamable_http_client(live.base + "/mcp",
                                                           http_client=http),
                                    read_timeout_seconds=WAIT) as client:
                return await client.list_tools()

        assert {tool.name for tool in run_async(run).tools} == TOOLS
    finally:
        bridge = live.app.extensions.get("lumara_mcp")
        if bridge is not None:
            bridge.close()


# -- the stdio command's services ---------------------------------------------------------
def test_the_stdio_services_load_the_chat_model_only_when_ask_needs_it(tmp_path):
    engine = FakeEngine()
    services = lazy_services(load_settings({"data_dir": str(tmp_path)}),
                             {"embedder": FakeEmbedder(), "engine": engine})
    server = build_server(services, lifespan=lambda _server: loading(services))

    async def work(client):
        added = await client.call_tool("add_memory", {"content": "My dog is called Rex."})
        found = await client.call_tool("search_memories", {"query": "dog"})
        state_before_ask = engine.model.state
        answer = await client.call_tool("ask", {"question": "What is my dog called?"})
        return added, found, state_before_ask, answer

    async def run():
        async with Client(server, read_timeout_seconds=WAIT) as client:
            return await work(client)

    added, found, state_before_ask, answer = run_async(run)
    assert not added.is_error and not found.is_error and not answer.is_error
    assert found.structured_content["results"][0]["memory"]["content"] == "My dog is called Rex."
    assert state_before_ask == "not_started"
    assert engine.model.state == "ready"
    assert answer.structured_content["memories"][0]["content"] == "My dog is called Rex."
    services.vector_index.close()


def test_the_stdio_command_re_embeds_vectors_another_model_made(tmp_path):
    """Started with another embedding model than the one that made the stored vectors, it
    re-embeds them, as the web server does: searches would otherwise compare two models'
    vectors."""
    web = create_app({"data_dir": str(tmp_path), "embedder": FakeEmbedder(),
                      "engine": FakeEngine()})
    added = web.test_client().post("/api/memories", json={"content": "My dog is called Rex."})
    assert added.status_code == 201
    web.extensions["lumara"].vector_index.close()

    other = OtherModel()
    services = lazy_services(load_settings({"data_dir": str(tmp_path)}),
                             {"embedder": other, "engine": FakeEngine()})
    server = build_server(services, lifespan=lambda _server: loading(services))

    async def run():
        async with Client(server, read_timeout_seconds=WAIT) as client:
            wait_until(lambda: services.reembed.status()["state"] == "done", timeout=WAIT,
                       what="the re-embed")
            return await client.call_tool("search_memories", {"query": "Rex"})

    found = run_async(run)
    assert services.reembed.status()["reason"] == "model_changed"
    assert found.structured_content["results"][0]["memory"]["content"] == "My dog is called Rex."
    conn = services.connect()
    try:
        assert meta_store.get_value(conn, meta_store.VECTORS_MODEL) == other.model_id
    finally:
        conn.close()
    services.vector_index.close()


def test_a_body_over_the_request_limit_is_refused_before_the_mcp_server_reads_it(serve):
    live = serve(max_request_bytes=1000)
    request = urllib.request.Request(
        live.base + "/mcp", method="POST", data=json.dumps({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "add_memory", "arguments": {"content": "x" * 2000}}}).encode(),
        headers={"Content-Type": "application/json",
                 "Accept": "application/json, text/event-stream"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=WAIT)
    with refused.value:
        assert refused.value.code == 413
        assert json.loads(refused.value.read())["error"]["code"] == "request_entity_too_large"
    assert "lumara_mcp" not in live.app.extensions


# -- the command --------------------------------------------------------------------------
def test_the_command_is_listed_and_takes_the_servers_flags(capsys):
    from lumara_web import cli
    from lumara_web.mcp.stdio import parse_args

    cli.main(["--help"])
    assert "mcp " in capsys.readouterr().out
    assert parse_args(["--data-dir", "/tmp/x", "--engine-url", "http://127.0.0.1:8080/v1"]) == \
        {"data_dir": "/tmp/x", "engine_url": "http://127.0.0.1:8080/v1"}
