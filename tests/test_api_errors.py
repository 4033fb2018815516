"""Bad input for every endpoint: a specific 4xx (never a 500), a JSON body of the form
{"error": {"code", "message"}}, and nothing written — the memories rows and the vectors are
byte-for-byte what they were, and the embedding model was never asked for anything."""

from __future__ import annotations

import json

import pytest

from lumara_web.storage import db

from .helpers import error_check

MAX_CONTENT = 10_000  # default max_content_chars
MAX_REQUEST = 1_000_000  # default max_request_bytes


# -- helpers ----------------------------------------------------------------------------
def snapshot(app):
    """Every memory row and every vector row (id, type, embedding bytes)."""
    conn = db.connect(app.extensions["lumara"].settings["db_path"])
    try:
        memories = [tuple(row) for row in conn.execute("SELECT * FROM memories ORDER BY id")]
        vectors = [tuple(row) for row in conn.execute(
            "SELECT memory_id, type, embedding FROM memory_vectors ORDER BY memory_id")]
        vector_count = conn.execute("SELECT count(*) FROM memory_vectors").fetchone()[0]
    finally:
        conn.close()
    return {"memories": memories, "vectors": vectors, "vector_count": vector_count}


@pytest.fixture
def seeded(client):
    """Two memories, so 'nothing changed' compares real rows (and PATCH has targets)."""
    ids = []
    for content, tags in [("the kettle is in the left cupboard", ["home"]),
                          ("standup is at nine on weekdays", ["work"])]:
        response = client.post("/api/memories", json={"content": content, "tags": tags})
        assert response.status_code == 201
        ids.append(response.get_json()["memory"]["id"])
    return ids


@pytest.fixture
def expect_error(app, embedder, seeded):
    """expect_error(send, status, code): send() must fail so, changing nothing."""
    before = snapshot(app)  # the seeded rows: "nothing changed" compares real rows
    assert before["vector_count"] == len(before["memories"]) > 0
    return error_check(app, embedder, snapshot)


# The three endpoints that take a JSON body; PATCH targets the first seeded memory.
BODY_ENDPOINTS = ["add", "check", "patch"]


def send_body(client, endpoint, seeded, **kwargs):
    if endpoint == "patch":
        return client.patch(f"/api/memories/{seeded[0]}", **kwargs)
    path = "/api/memories" if endpoint == "add" else "/api/memories/check"
    return client.post(path, **kwargs)


def send_raw(client, endpoint, seeded, raw: bytes, content_type="application/json"):
    return send_body(client, endpoint, seeded, data=raw, content_type=content_type)


# -- field validation: add, check and patch ---------------------------------------------
FIELD_CASES = [  # (body, code): each is wrong for all three body endpoints
    ({"content": ""}, "empty_content"),
    ({"content": "   \n\t "}, "empty_content"),
    ({"content": "\u200b\u200b\u200b"}, "empty_content"),  # zero-width spaces only
    ({"content": " \ufeff\u200d \u2060\u200e"}, "empty_content"),  # other invisibles
    ({"content": "x" * (MAX_CONTENT + 1)}, "content_too_long"),
    ({"content": "  " + "x" * (MAX_CONTENT + 1) + "  "}, "content_too_long"),
    ({"content": 42}, "invalid_content"),
    ({"content": 4.2}, "invalid_content"),
    ({"content": True}, "invalid_content"),
    ({"content": ["a", "list"]}, "invalid_content"),
    ({"content": {"text": "x"}}, "invalid_content"),
    ({"content": None}, "invalid_content"),
    ({"content": "nul \x00 inside"}, "invalid_content"),
    ({"content": "ok", "type": "opinion"}, "invalid_type"),
    ({"content": "ok", "type": "Knowledge"}, "invalid_type"),  # types are exact
    ({"content": "ok", "type": None}, "invalid_type"),
    ({"content": "ok", "type": ["knowledge"]}, "invalid_type"),
    ({"content": "ok", "tags": "work"}, "invalid_tags"),
    ({"content": "ok", "tags": {"work": True}}, "invalid_tags"),
    ({"content": "ok", "tags": None}, "invalid_tags"),
    ({"content": "ok", "tags": ["work", 7]}, "invalid_tags"),
    ({"content": "ok", "tags": [["nested"]]}, "invalid_tags"),
    ({"content": "ok", "tags": [None]}, "invalid_tags"),
    ({"content": "ok", "tags": [""]}, "invalid_tags"),
    ({"content": "ok", "tags": ["fine", "  \t "]}, "invalid_tags"),
    ({"content": "ok", "tags": ["t" * 51]}, "invalid_tags"),
    ({"content": "ok", "tags": [f"tag{i}" for i in range(21)]}, "invalid_tags"),
    ({"content": "ok", "tags": ["nul\x00tag"]}, "invalid_tags"),
    ({"content": "ok", "colour": "red"}, "unknown_field"),
    ({"content": "ok", "Content": "ok"}, "unknown_field"),  # field names are exact
    ({"content": "ok", "id": 5}, "unknown_field"),
]


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS)
@pytest.mark.parametrize("body, code", FIELD_CASES)
def test_bad_fields_are_rejected(client, seeded, expect_error, endpoint, body, code):
    expect_error(lambda: send_body(client, endpoint, seeded, json=body), 400, code)


METADATA_CASES = [
    ({"content": "ok", "metadata": "a string"}, "invalid_metadata"),
    ({"content": "ok", "metadata": ["a", "list"]}, "invalid_metadata"),
    ({"content": "ok", "metadata": None}, "invalid_metadata"),
    ({"content": "ok", "metadata": 3}, "invalid_metadata"),
    ({"content": "ok", "metadata": {"blob": "x" * 5000}}, "invalid_metadata"),  # > 4096 B
]


@pytest.mark.parametrize("endpoint", ["add", "check"])
@pytest.mark.parametrize("body, code", METADATA_CASES)
def test_bad_metadata_is_rejected(client, seeded, expect_error, endpoint, body, code):
    expect_error(lambda: send_body(client, endpoint, seeded, json=body), 400, code)


def test_deeply_nested_metadata_is_rejected(client, seeded, expect_error):
    # A few hundred levels parse fine but could not be serialized back: the memory was
    # stored, the add answered 500, and every later list or search that met it failed.
    deep = "[" * 600 + "]" * 600
    raw = f'{{"content": "ok", "metadata": {{"a": {deep}}}}}'.encode()
    expect_error(lambda: send_raw(client, "add", seeded, raw), 400, "invalid_metadata")
    assert client.get("/api/memories").status_code == 200


def test_metadata_is_not_a_patchable_field(client, seeded, expect_error):
    expect_error(lambda: send_body(client, "patch", seeded, json={"metadata": {}}),
                 400, "unknown_field")


def test_content_is_required_when_adding(client, seeded, expect_error):
    for endpoint in ("add", "check"):
        expect_error(lambda: send_body(client, endpoint, seeded, json={"tags": ["x"]}),
                     400, "empty_content")


def test_patch_with_an_empty_object_is_rejected(client, seeded, expect_error):
    expect_error(lambda: send_body(client, "patch", seeded, json={}), 400, "empty_patch")


@pytest.mark.parametrize("body, code", [
    ({"content": "a brand new text", "type": "bogus"}, "invalid_type"),
    ({"type": "method", "tags": ["ok", 1]}, "invalid_tags"),
    ({"tags": ["new"], "content": "   "}, "empty_content"),
    ({"content": "a brand new text", "tags": ["fine"], "extra": 1}, "unknown_field"),
])
def test_patch_with_one_bad_field_changes_none_of_the_good_ones(client, seeded, expect_error,
                                                                body, code):
    expect_error(lambda: send_body(client, "patch", seeded, json=body), 400, code)


# -- boundaries that must be accepted (so the rejections above are not too eager) -------
def test_limits_are_inclusive(client, seeded):
    longest = client.post("/api/memories", json={
        "content": "  " + "x" * MAX_CONTENT + "\n",  # surrounding spaces do not count
        "tags": ["t" * 50] + [f"tag{i}" for i in range(19)],
        "metadata": {"blob": "x" * 4000}})
    assert longest.status_code == 201, longest.get_json()
    memory = longest.get_json()["memory"]
    assert len(memory["content"]) == MAX_CONTENT and len(memory["tags"]) == 20
    # 21 tags that collapse to 20 distinct ones are fine: the limit counts distinct tags.
    collapsing = client.post("/api/memories", json={
        "content": "ok", "tags": [f"tag{i}" for i in range(20)] + ["TAG0"]})
    assert collapsing.status_code == 201
    assert client.get("/api/memories").get_json()["total"] == len(seeded) + 2


# -- the body itself: JSON, encoding, content type, size --------------------------------
RAW_BODY_CASES = [  # (raw bytes, code)
    (b'{"content": "unterminated', "invalid_json"),
    (b"", "invalid_json"),
    (b"content=hello", "invalid_json"),
    (b'{"content": "x",}', "invalid_json"),
    (b'{"content": NaN}', "invalid_json"),
    (b'{"content": "ok", "metadata": {"n": NaN}}', "invalid_json"),
    (b'{"content": "ok", "metadata": {"n": Infinity}}', "invalid_json"),
    (b'{"content": "ok", "metadata": {"n": -Infinity}}', "invalid_json"),
    (b'{"content": "caf\xe9"}', "invalid_json"),  # Latin-1, not UTF-8
    (b'\xef\xbb\xbf{"content": "bom"}', "invalid_json"),
    (b"[" * 5000 + b"]" * 5000, "invalid_json"),  # too deep to parse: not a 500
    (b'["content", "x"]', "invalid_body"),
    (b'"just a string"', "invalid_body"),
    (b"42", "invalid_body"),
    (b"null", "invalid_body"),
    # A lone surrogate is valid JSON but not storable text; written as the raw escape.
    (b'{"content": "broken \\ud800 text"}', "invalid_content"),
    (b'{"content": "\\udfff"}', "invalid_content"),
    (b'{"content": "ok", "tags": ["\\ud800"]}', "invalid_tags"),
    (b'{"content": "nul \\u0000 escaped"}', "invalid_content"),
]


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS)
@pytest.mark.parametrize("raw, code", RAW_BODY_CASES)
def test_malformed_bodies_are_rejected(client, seeded, expect_error, endpoint, raw, code):
    expect_error(lambda: send_raw(client, endpoint, seeded, raw), 400, code)


def test_a_number_too_large_for_json_is_rejected_as_metadata(client, seeded, expect_error):
    # 1e400 parses as float('inf'), which cannot be stored back as JSON.
    raw = b'{"content": "ok", "metadata": {"n": 1e400}}'
    expect_error(lambda: send_raw(client, "add", seeded, raw), 400, "invalid_metadata")


def test_a_lone_surrogate_in_metadata_is_rejected(client, seeded, expect_error):
    raw = b'{"content": "ok", "metadata": {"note": "\\ud800"}}'
    expect_error(lambda: send_raw(client, "add", seeded, raw), 400, "invalid_metadata")


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS)
@pytest.mark.parametrize("kwargs", [
    {"data": '{"content": "ok"}', "content_type": "text/plain"},
    {"data": {"content": "ok"}},  # a form post
    {"data": {"content": "ok"}, "content_type": "multipart/form-data"},
    {"data": b'{"content": "ok"}'},  # no Content-Type at all
    {"data": '{"content": "ok"}', "content_type": "application/jsonx"},
], ids=["text-plain", "form-urlencoded", "multipart", "missing", "near-miss"])
def test_non_json_content_types_are_rejected(client, seeded, expect_error, endpoint, kwargs):
    expect_error(lambda: send_body(client, endpoint, seeded, **kwargs),
                 415, "unsupported_media_type")


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS)
def test_a_body_over_the_size_limit_is_refused(client, seeded, expect_error, endpoint):
    raw = json.dumps({"content": "x" * MAX_REQUEST}).encode()
    assert len(raw) > MAX_REQUEST
    expect_error(lambda: send_raw(client, endpoint, seeded, raw), 413,
                 "request_entity_too_large")


def test_json_content_type_parameters_are_accepted(client, seeded):
    # The check is on the media type, so a charset parameter is fine.
    response = client.post("/api/memories", data=b'{"content": "ok"}',
                           content_type="application/json; charset=utf-8")
    assert response.status_code == 201


# -- ids: unknown, not an integer, out of range -----------------------------------------
UNKNOWN_ID = 987654


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
@pytest.mark.parametrize("memory_id", [
    UNKNOWN_ID, 0, 2**63 - 1,
    2**63, 10**19 - 1,  # beyond SQLite's integers: used to be a 500 (OverflowError)
])
def test_unknown_ids_are_404(client, seeded, expect_error, method, memory_id):
    send = getattr(client, method)
    kwargs = {"json": {"tags": ["x"]}} if method == "patch" else {}
    expect_error(lambda: send(f"/api/memories/{memory_id}", **kwargs), 404, "memory_not_found")


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
@pytest.mark.parametrize("memory_id", [
    "abc", "1.5", "-1", "1e3", "0x1", "%20", "１",  # fullwidth digit one
    "1" + "0" * 19,  # 20 digits: more than any SQLite integer has
    "9" * 5000,  # used to be a 500: Python refuses to parse ints of > 4300 digits
])
def test_ids_that_are_not_integers_are_404(client, seeded, expect_error, method, memory_id):
    send = getattr(client, method)
    kwargs = {"json": {"tags": ["x"]}} if method == "patch" else {}
    expect_error(lambda: send(f"/api/memories/{memory_id}", **kwargs), 404, "not_found")


def test_patch_validates_the_body_even_for_an_unknown_id(client, seeded, expect_error):
    expect_error(lambda: client.patch(f"/api/memories/{UNKNOWN_ID}", json={"content": ""}),
                 400, "empty_content")


def test_deleting_twice_is_404_the_second_time(client, seeded, expect_error):
    assert client.delete(f"/api/memories/{seeded[0]}").status_code == 200
    expect_error(lambda: client.delete(f"/api/memories/{seeded[0]}"), 404, "memory_not_found")
    expect_error(lambda: client.patch(f"/api/memories/{seeded[0]}", json={"type": "method"}),
                 404, "memory_not_found")


# -- search query parameters ------------------------------------------------------------
@pytest.mark.parametrize("params, code", [
    ({}, "missing_query"),
    ({"q": ""}, "missing_query"),
    ({"q": "   \t"}, "missing_query"),
    ({"k": "5"}, "missing_query"),
    ({"q": "x" * (MAX_CONTENT + 1)}, "content_too_long"),
    ({"q": "nul\x00"}, "invalid_content"),
    ({"q": "kettle", "k": "0"}, "invalid_k"),
    ({"q": "kettle", "k": "-1"}, "invalid_k"),
    ({"q": "kettle", "k": "abc"}, "invalid_k"),
    ({"q": "kettle", "k": "101"}, "invalid_k"),
    ({"q": "kettle", "k": "2.5"}, "invalid_k"),
    ({"q": "kettle", "k": "1e3"}, "invalid_k"),
    ({"q": "kettle", "k": "9" * 5000}, "invalid_k"),
    ({"q": "kettle", "threshold": "abc"}, "invalid_threshold"),
    ({"q": "kettle", "threshold": "2"}, "invalid_threshold"),
    ({"q": "kettle", "threshold": "-1.01"}, "invalid_threshold"),
    ({"q": "kettle", "threshold": "nan"}, "invalid_threshold"),
    ({"q": "kettle", "threshold": "inf"}, "invalid_threshold"),
    ({"q": "kettle", "type": "opinion"}, "invalid_type"),
    ({"q": "kettle", "type": "METHOD"}, "invalid_type"),
])
def test_bad_search_parameters_are_rejected(client, expect_error, params, code):
    expect_error(lambda: client.get("/api/memories/search", query_string=params), 400, code)


# -- list query parameters --------------------------------------------------------------
@pytest.mark.parametrize("params, code", [
    ({"limit": "0"}, "invalid_limit"),
    ({"limit": "-5"}, "invalid_limit"),
    ({"limit": "abc"}, "invalid_limit"),
    ({"limit": "201"}, "invalid_limit"),
    ({"limit": "1.5"}, "invalid_limit"),
    ({"offset": "-1"}, "invalid_offset"),
    ({"offset": "abc"}, "invalid_offset"),
    ({"offset": "9" * 30}, "invalid_offset"),  # beyond SQLite's integer range
    ({"type": "opinion"}, "invalid_type"),
    ({"tag": "t" * 51}, "invalid_tags"),
    ({"tag": "nul\x00"}, "invalid_tags"),
])
def test_bad_list_parameters_are_rejected(client, expect_error, params, code):
    expect_error(lambda: client.get("/api/memories", query_string=params), 400, code)


# -- methods and paths ------------------------------------------------------------------
@pytest.mark.parametrize("method, path, allowed", [
    ("put", "/api/memories", {"GET", "POST"}),
    ("delete", "/api/memories", {"GET", "POST"}),
    ("patch", "/api/memories", {"GET", "POST"}),
    ("get", "/api/memories/check", {"POST"}),
    ("put", "/api/memories/check", {"POST"}),
    ("post", "/api/memories/search", {"GET"}),
    ("delete", "/api/memories/search", {"GET"}),
    ("post", "/api/memories/1", {"GET", "PATCH", "DELETE"}),
    ("put", "/api/memories/1", {"GET", "PATCH", "DELETE"}),
    ("post", "/health", {"GET"}),
])
def test_wrong_methods_are_405_json(client, expect_error, method, path, allowed):
    response = expect_error(lambda: getattr(client, method)(path, json={"content": "x"}),
                            405, "method_not_allowed")
    # HTTP requires a 405 to say what is allowed; the JSON handler must keep the header.
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


@pytest.mark.parametrize("path", ["/api", "/api/", "/api/nothing", "/api/memories/1/extra",
                                  "/api/memories/search/more"])
def test_unknown_api_paths_are_404_json(client, expect_error, path):
    expect_error(lambda: client.get(path), 404, "not_found")
