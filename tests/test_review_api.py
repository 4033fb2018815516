"""The suggestions and contradictions JSON API end to end through Flask with the
FakeEmbedder. Suggestions and contradictions are made with review_store directly (the chat
that normally makes them is not under test); memories through POST /api/memories.
Bad input is a specific 4xx with {"error": {"code", "message"}} and changes nothing."""

from __future__ import annotations

import json

import pytest

from lumara_web.storage import review_store

from .helpers import api_snapshot, assert_json_error, connect, error_check, get_json

UNKNOWN_ID = 987654
MAX_REQUEST = 1_000_000  # default max_request_bytes
OLDER = "the user lives in Bergen near the fish market"
NEWER = "the user lives in Oslo near the royal palace"


# -- helpers ----------------------------------------------------------------------------
@pytest.fixture
def conn(app):
    conn = connect(app)
    yield conn
    conn.close()


def add_memory(client, content, **fields):
    response = client.post("/api/memories", json={"content": content, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["memory"]


def add_suggestion(conn, content="The user drinks green tea every morning", **fields):
    values = {"type": "knowledge", "tags": ["drinks"], "confidence": 0.8, **fields}
    return review_store.add_suggestion(conn, content=content, **values).id


def item_ids(client, path, **params):
    return [item["id"] for item in get_json(client, path, query_string=params)["items"]]


def memory_ids(conn):
    return [row[0] for row in conn.execute("SELECT id FROM memories ORDER BY id")]


def vector_ids(conn):
    return [row[0] for row in conn.execute(
        "SELECT memory_id FROM memory_vectors ORDER BY memory_id")]


def accept(client, suggestion_id, **kwargs):
    return client.post(f"/api/suggestions/{suggestion_id}/accept", **kwargs)


def resolve(client, contradiction_id, resolution):
    return client.post(f"/api/contradictions/{contradiction_id}/resolve",
                       json={"resolution": resolution})


@pytest.fixture
def pending(conn):
    """One pending suggestion."""
    return add_suggestion(conn)


@pytest.fixture
def conflict(client, conn):
    """Two memories (older, newer) and a pending contradiction between them."""
    older, newer = add_memory(client, OLDER), add_memory(client, NEWER)
    contradiction = review_store.add_contradiction(
        conn, memory_id=newer["id"], existing_memory_id=older["id"], similarity=0.75,
        confidence=0.9, explanation="Bergen or Oslo?")
    return {"id": contradiction.id, "older": older, "newer": newer}


@pytest.fixture
def expect_error(app, embedder, pending, conflict):
    """expect_error(send, status, code): send() must fail so, changing nothing."""
    return error_check(app, embedder)


# -- list suggestions -------------------------------------------------------------------
def test_list_suggestions_on_an_empty_store(client):
    assert get_json(client, "/api/suggestions") == {"items": []}


def test_list_suggestions_by_status_newest_first(client, conn):
    first, second, third, fourth = (add_suggestion(conn, f"fact number {i}") for i in range(4))
    assert accept(client, first).status_code == 201
    assert client.post(f"/api/suggestions/{second}/dismiss").status_code == 200
    assert item_ids(client, "/api/suggestions") == [fourth, third]
    assert item_ids(client, "/api/suggestions", status="pending") == [fourth, third]
    assert item_ids(client, "/api/suggestions", status="accepted") == [first]
    assert item_ids(client, "/api/suggestions", status="dismissed") == [second]
    assert item_ids(client, "/api/suggestions", status="all") == [fourth, third, second, first]


def test_listed_suggestions_have_every_field(client, conn):
    suggestion_id = add_suggestion(conn, tags=["drinks", "morning"], confidence=0.75)
    [item] = get_json(client, "/api/suggestions")["items"]
    assert item["id"] == suggestion_id and item["status"] == "pending"
    assert item["content"] == "The user drinks green tea every morning"
    assert item["tags"] == ["drinks", "morning"] and item["confidence"] == 0.75
    assert item["memory_id"] is None and item["type"] == "knowledge"
    assert {"conversation_id", "message_id", "created_at", "updated_at"} <= set(item)


# -- accept -----------------------------------------------------------------------------
def test_accept_saves_the_suggestion_as_a_memory(client, conn, pending):
    response = accept(client, pending)
    assert response.status_code == 201
    body = response.get_json()
    assert list(body) == ["suggestion", "memory", "duplicates", "contradiction_candidates"]
    memory = body["memory"]
    assert memory["content"] == "The user drinks green tea every morning"
    assert memory["type"] == "knowledge" and memory["tags"] == ["drinks"]
    assert memory["source"] == "chat"
    assert body["suggestion"]["status"] == "accepted"
    assert body["suggestion"]["memory_id"] == memory["id"]

    assert get_json(client, f"/api/memories/{memory['id']}")["memory"] == memory
    assert vector_ids(conn) == [memory["id"]]
    assert item_ids(client, "/api/suggestions") == []
    [stored] = get_json(client, "/api/suggestions", query_string={"status": "accepted"})["items"]
    assert stored == body["suggestion"]


@pytest.mark.parametrize("kwargs", [
    {},  # no body at all
    {"data": b"", "content_type": "application/json"},
    {"data": b"", "content_type": "text/plain"},  # empty, so its type does not matter
    {"json": {}},
], ids=["no-body", "empty-json", "empty-text", "empty-object"])
def test_accept_without_edits(client, pending, kwargs):
    response = accept(client, pending, **kwargs)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["memory"]["content"] == "The user drinks green tea every morning"


def test_accept_with_edited_content_embeds_and_stores_the_edit(client, conn, embedder,
                                                               pending):
    edited = "The user drinks jasmine tea every afternoon"
    response = accept(client, pending, json={"content": f"  {edited} "})
    assert response.status_code == 201, response.get_json()
    memory = response.get_json()["memory"]
    assert memory["content"] == edited and memory["tags"] == ["drinks"]
    assert edited in embedder.texts_embedded
    # The stored vector is the edited text's: searching for it finds the memory exactly.
    hits = get_json(client, "/api/memories/search", query_string={"q": edited})["results"]
    assert hits[0]["memory"]["id"] == memory["id"] and hits[0]["similarity"] > 0.999
    suggestion = review_store.get_suggestion(conn, pending)
    assert suggestion.status == "accepted" and suggestion.memory_id == memory["id"]
    assert suggestion.content == "The user drinks green tea every morning"  # as suggested


def test_accept_with_edited_type_and_tags(client, pending):
    response = accept(client, pending, json={"type": "experience", "tags": [" Tea ", "TEA",
                                                                            "home"]})
    assert response.status_code == 201
    memory = response.get_json()["memory"]
    assert memory["type"] == "experience" and memory["tags"] == ["tea", "home"]
    assert memory["content"] == "The user drinks green tea every morning"


def test_accept_with_empty_tags_clears_them(client, pending):
    response = accept(client, pending, json={"tags": []})
    assert response.status_code == 201 and response.get_json()["memory"]["tags"] == []


def test_accept_reports_what_the_new_memory_duplicates(client, conn):
    existing = add_memory(client, "The user drinks green tea every morning")
    response = accept(client, add_suggestion(conn))
    body = response.get_json()
    assert [hit["memory"]["id"] for hit in body["duplicates"]] == [existing["id"]]
    assert body["memory"]["id"] != existing["id"]


def test_accepting_twice_is_409_and_makes_no_second_memory(client, conn, pending,
                                                           expect_error):
    first = accept(client, pending)
    assert first.status_code == 201
    expect_error(lambda: accept(client, pending), 409, "already_settled")
    expect_error(lambda: accept(client, pending, json={"content": "something else"}),
                 409, "already_settled")
    expect_error(lambda: client.post(f"/api/suggestions/{pending}/dismiss"), 409,
                 "already_settled")
    assert memory_ids(conn).count(first.get_json()["memory"]["id"]) == 1
    assert len(memory_ids(conn)) == 3  # the conflict fixture's two, and this one


def test_a_suggestion_settled_meanwhile_is_409_and_nothing_is_saved(client, app, conn,
                                                                    pending, monkeypatch):
    # Another request dismisses it between the check and the write: the memory just
    # inserted in the same transaction must go too, vector and all.
    real_settle = review_store.settle_suggestion

    def settle_after_a_rival(conn, suggestion_id, status, memory_id=None):
        real_settle(conn, suggestion_id, "dismissed")
        return real_settle(conn, suggestion_id, status, memory_id)

    monkeypatch.setattr(review_store, "settle_suggestion", settle_after_a_rival)
    before = api_snapshot(app)
    assert_json_error(accept(client, pending), 409, "already_settled")
    assert api_snapshot(app) == before
    assert review_store.get_suggestion(conn, pending).status == "pending"


# -- dismiss ----------------------------------------------------------------------------
def test_dismiss(client, conn, pending):
    response = client.post(f"/api/suggestions/{pending}/dismiss")
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["suggestion"]
    assert body["suggestion"]["status"] == "dismissed" and body["suggestion"]["memory_id"] is None
    assert memory_ids(conn) == []
    assert item_ids(client, "/api/suggestions", status="dismissed") == [pending]


def test_undo_of_accept_trashes_its_memory_and_the_suggestion_is_pending_again(
        client, conn, pending):
    memory = accept(client, pending).get_json()["memory"]
    response = client.post(f"/api/suggestions/{pending}/reopen")
    assert response.status_code == 200
    body = response.get_json()
    assert body["suggestion"]["status"] == "pending" and body["suggestion"]["memory_id"] is None
    assert body["deleted"]["id"] == memory["id"] and memory_ids(conn) == []
    assert item_ids(client, "/api/trash") == [memory["id"]]  # restorable from the trash
    assert item_ids(client, "/api/suggestions") == [pending]
    # Pending again, so it can be accepted (as edited) again.
    assert accept(client, pending, json={"type": "method"}).status_code == 201


def test_undo_of_dismiss_and_undo_of_nothing(client, conn, pending, expect_error):
    expect_error(lambda: client.post(f"/api/suggestions/{pending}/reopen"), 409,
                 "already_settled")  # pending: nothing to undo
    client.post(f"/api/suggestions/{pending}/dismiss")
    body = client.post(f"/api/suggestions/{pending}/reopen").get_json()
    assert body["suggestion"]["status"] == "pending" and body["deleted"] is None
    expect_error(lambda: client.post("/api/suggestions/999/reopen"), 404, "suggestion_not_found")


def test_a_dismissed_suggestion_cannot_be_settled_again(client, pending, expect_error):
    assert client.post(f"/api/suggestions/{pending}/dismiss").status_code == 200
    expect_error(lambda: client.post(f"/api/suggestions/{pending}/dismiss"), 409,
                 "already_settled")
    expect_error(lambda: accept(client, pending), 409, "already_settled")


# -- suggestions: bad input -------------------------------------------------------------
@pytest.mark.parametrize("body, code", [
    ({"content": ""}, "empty_content"),
    ({"content": "   "}, "empty_content"),
    ({"content": "x" * 10_001}, "content_too_long"),
    ({"content": 42}, "invalid_content"),
    ({"content": None}, "invalid_content"),
    ({"content": ["a"]}, "invalid_content"),
    ({"content": "nul \x00"}, "invalid_content"),
    ({"type": "opinion"}, "invalid_type"),
    ({"type": None}, "invalid_type"),
    ({"tags": "tea"}, "invalid_tags"),
    ({"tags": None}, "invalid_tags"),
    ({"tags": ["tea", 7]}, "invalid_tags"),
    ({"tags": [""]}, "invalid_tags"),
    ({"content": "fine", "metadata": {}}, "unknown_field"),
    ({"content": "fine", "confidence": 1}, "unknown_field"),
    ({"status": "accepted"}, "unknown_field"),
])
def test_bad_accept_edits_are_rejected(client, pending, expect_error, body, code):
    expect_error(lambda: accept(client, pending, json=body), 400, code)


@pytest.mark.parametrize("raw, code", [
    (b'{"content": "unterminated', "invalid_json"),
    (b'{"content": "x",}', "invalid_json"),
    (b'{"content": NaN}', "invalid_json"),
    (b'{"content": "caf\xe9"}', "invalid_json"),
    (b"   ", "invalid_json"),  # whitespace is a body, and not JSON
    (b"[" * 5000 + b"]" * 5000, "invalid_json"),
    (b'["content"]', "invalid_body"),
    (b"null", "invalid_body"),
    (b'{"content": "broken \\ud800 text"}', "invalid_content"),
    (b'{"tags": ["\\udfff"]}', "invalid_tags"),
])
def test_malformed_accept_bodies_are_rejected(client, pending, expect_error, raw, code):
    expect_error(lambda: accept(client, pending, data=raw, content_type="application/json"),
                 400, code)


@pytest.mark.parametrize("kwargs", [
    {"data": '{"content": "x"}', "content_type": "text/plain"},
    {"data": {"content": "x"}},  # a form post
    {"data": b'{"content": "x"}'},  # no Content-Type at all
], ids=["text-plain", "form-urlencoded", "missing"])
def test_a_present_accept_body_needs_a_json_content_type(client, pending, expect_error,
                                                         kwargs):
    expect_error(lambda: accept(client, pending, **kwargs), 415, "unsupported_media_type")


def test_an_oversized_accept_body_is_refused(client, pending, expect_error):
    raw = json.dumps({"content": "x" * MAX_REQUEST}).encode()
    expect_error(lambda: accept(client, pending, data=raw, content_type="application/json"),
                 413, "request_entity_too_large")


@pytest.mark.parametrize("action", ["accept", "dismiss"])
@pytest.mark.parametrize("suggestion_id", [UNKNOWN_ID, 0, 2**63 - 1, 2**63, 10**19 - 1])
def test_unknown_suggestions_are_404(client, expect_error, action, suggestion_id):
    expect_error(lambda: client.post(f"/api/suggestions/{suggestion_id}/{action}"), 404,
                 "suggestion_not_found")


@pytest.mark.parametrize("action", ["accept", "dismiss"])
@pytest.mark.parametrize("suggestion_id", ["abc", "1.5", "-1", "１", "1" + "0" * 19, "9" * 5000])
def test_suggestion_ids_that_are_not_integers_are_404(client, expect_error, action,
                                                      suggestion_id):
    expect_error(lambda: client.post(f"/api/suggestions/{suggestion_id}/{action}"), 404,
                 "not_found")


@pytest.mark.parametrize("status", ["bogus", "PENDING", "resolved", "pending,accepted", "*"])
def test_bad_suggestion_status_is_rejected(client, expect_error, status):
    expect_error(lambda: client.get("/api/suggestions", query_string={"status": status}),
                 400, "invalid_status")


@pytest.mark.parametrize("method, path, allowed", [
    ("get", "/api/suggestions/1/accept", {"POST"}),
    ("get", "/api/suggestions/1/dismiss", {"POST"}),
    ("post", "/api/suggestions", {"GET"}),
    ("get", "/api/contradictions/1/resolve", {"POST"}),
    ("post", "/api/contradictions", {"GET"}),
])
def test_wrong_methods_are_405_json(client, expect_error, method, path, allowed):
    response = expect_error(lambda: getattr(client, method)(path), 405, "method_not_allowed")
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


# -- contradictions: list ---------------------------------------------------------------
def test_list_contradictions_embeds_both_memories(client, conflict):
    [item] = get_json(client, "/api/contradictions")["items"]
    assert item["id"] == conflict["id"] and item["status"] == "pending"
    assert item["memory_id"] == conflict["newer"]["id"]
    assert item["existing_memory_id"] == conflict["older"]["id"]
    assert item["memory"] == conflict["newer"] and item["existing_memory"] == conflict["older"]
    assert item["explanation"] == "Bergen or Oslo?" and item["resolution"] is None
    assert item["similarity"] == 0.75 and item["confidence"] == 0.9


def test_list_contradictions_by_status_newest_first(client, conn, conflict):
    third = add_memory(client, "the user lives in Trondheim")
    later = review_store.add_contradiction(
        conn, memory_id=third["id"], existing_memory_id=conflict["newer"]["id"],
        similarity=0.72, confidence=0.6, explanation="Trondheim or Oslo?").id
    assert item_ids(client, "/api/contradictions") == [later, conflict["id"]]
    assert resolve(client, conflict["id"], "keep_both").status_code == 200
    assert item_ids(client, "/api/contradictions") == [later]
    assert item_ids(client, "/api/contradictions", status="pending") == [later]
    assert item_ids(client, "/api/contradictions", status="resolved") == [conflict["id"]]
    assert item_ids(client, "/api/contradictions", status="all") == [later, conflict["id"]]


def test_deleting_a_memory_drops_its_pending_contradiction(client, conflict):
    assert client.delete(f"/api/memories/{conflict['newer']['id']}").status_code == 200
    assert get_json(client, "/api/contradictions")["items"] == []
    [item] = get_json(client, "/api/contradictions", query_string={"status": "all"})["items"]
    assert item["memory_id"] is None and item["memory"] is None
    assert item["existing_memory"] == conflict["older"]


@pytest.mark.parametrize("resolution", ["keep_both", "replace", "keep_original"])
def test_a_moot_contradiction_cannot_be_resolved(client, conn, conflict, expect_error,
                                                 resolution):
    # The newer memory is gone: 'replace' would delete the older one too, leaving neither.
    assert client.delete(f"/api/memories/{conflict['newer']['id']}").status_code == 200
    expect_error(lambda: resolve(client, conflict["id"], resolution), 409, "already_settled")
    assert memory_ids(conn) == [conflict["older"]["id"]]


# -- contradictions: resolve ------------------------------------------------------------
@pytest.mark.parametrize("resolution, doomed", [
    ("keep_both", None), ("replace", "older"), ("keep_original", "newer")])
def test_resolve(client, conn, conflict, resolution, doomed):
    older, newer = conflict["older"]["id"], conflict["newer"]["id"]
    response = resolve(client, conflict["id"], resolution)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert list(body) == ["contradiction", "deleted"]
    contradiction = body["contradiction"]
    assert contradiction["status"] == "resolved" and contradiction["resolution"] == resolution
    assert contradiction["resolved_at"] is not None

    kept = [key for key in ("older", "newer") if key != doomed]
    assert memory_ids(conn) == sorted(conflict[key]["id"] for key in kept)
    assert vector_ids(conn) == memory_ids(conn)
    if doomed is None:
        assert body["deleted"] is None
        assert (contradiction["memory_id"], contradiction["existing_memory_id"]) == (newer,
                                                                                     older)
    else:
        assert body["deleted"] == conflict[doomed]
        assert client.get(f"/api/memories/{conflict[doomed]['id']}").status_code == 404
        # The history row stays, with the deleted memory's id set to NULL.
        assert contradiction["memory_id"] == (None if doomed == "newer" else newer)
        assert contradiction["existing_memory_id"] == (None if doomed == "older" else older)

    assert get_json(client, "/api/contradictions")["items"] == []
    [history] = get_json(client, "/api/contradictions",
                         query_string={"status": "resolved"})["items"]
    assert history["resolution"] == resolution
    assert history["memory"] == (None if doomed == "newer" else conflict["newer"])
    assert history["existing_memory"] == (None if doomed == "older" else conflict["older"])


def test_resolving_twice_is_409(client, conflict, expect_error):
    assert resolve(client, conflict["id"], "replace").status_code == 200
    for resolution in ("replace", "keep_original", "keep_both"):
        expect_error(lambda: resolve(client, conflict["id"], resolution), 409,
                     "already_settled")


# -- contradictions: bad input ----------------------------------------------------------
@pytest.mark.parametrize("body, code", [
    ({}, "invalid_resolution"),
    ({"resolution": "delete_both"}, "invalid_resolution"),
    ({"resolution": "Replace"}, "invalid_resolution"),
    ({"resolution": ""}, "invalid_resolution"),
    ({"resolution": None}, "invalid_resolution"),
    ({"resolution": 1}, "invalid_resolution"),
    ({"resolution": True}, "invalid_resolution"),
    ({"resolution": ["replace"]}, "invalid_resolution"),
    ({"resolution": {"replace": True}}, "invalid_resolution"),
    ({"resolution": "replace", "why": "moved"}, "unknown_field"),
    ({"Resolution": "replace"}, "unknown_field"),
])
def test_bad_resolutions_are_rejected(client, conflict, expect_error, body, code):
    expect_error(lambda: client.post(f"/api/contradictions/{conflict['id']}/resolve",
                                     json=body), 400, code)


@pytest.mark.parametrize("raw, code", [
    (b"", "invalid_json"),  # unlike accept, resolve needs a body
    (b'{"resolution": "replace"', "invalid_json"),
    (b'{"resolution": NaN}', "invalid_json"),
    (b'"replace"', "invalid_body"),
    (b'["replace"]', "invalid_body"),
])
def test_malformed_resolve_bodies_are_rejected(client, conflict, expect_error, raw, code):
    expect_error(lambda: client.post(f"/api/contradictions/{conflict['id']}/resolve",
                                     data=raw, content_type="application/json"), 400, code)


@pytest.mark.parametrize("kwargs", [
    {},  # no body at all
    {"data": '{"resolution": "replace"}', "content_type": "text/plain"},
    {"data": {"resolution": "replace"}},  # a form post
], ids=["no-body", "text-plain", "form-urlencoded"])
def test_resolve_needs_a_json_body(client, conflict, expect_error, kwargs):
    expect_error(lambda: client.post(f"/api/contradictions/{conflict['id']}/resolve",
                                     **kwargs), 415, "unsupported_media_type")


@pytest.mark.parametrize("contradiction_id", [UNKNOWN_ID, 0, 2**63 - 1, 2**63, 10**19 - 1])
def test_unknown_contradictions_are_404(client, expect_error, contradiction_id):
    expect_error(lambda: resolve(client, contradiction_id, "replace"), 404,
                 "contradiction_not_found")


@pytest.mark.parametrize("contradiction_id", ["abc", "1.5", "-1", "１", "9" * 5000])
def test_contradiction_ids_that_are_not_integers_are_404(client, expect_error,
                                                         contradiction_id):
    expect_error(lambda: resolve(client, contradiction_id, "replace"), 404, "not_found")


def test_resolve_validates_the_body_even_for_an_unknown_id(client, expect_error):
    expect_error(lambda: resolve(client, UNKNOWN_ID, "bogus"), 400, "invalid_resolution")


@pytest.mark.parametrize("status", ["bogus", "RESOLVED", "accepted", "dismissed"])
def test_bad_contradiction_status_is_rejected(client, expect_error, status):
    expect_error(lambda: client.get("/api/contradictions", query_string={"status": status}),
                 400, "invalid_status")
