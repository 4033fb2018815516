"""The conversations JSON API end to end through Flask. Conversations and messages are made
with conversation_store directly (the chat that normally makes them is not under test).
Bad input is a specific 4xx with {"error": {"code", "message"}} and changes nothing."""

from __future__ import annotations

import json

import pytest

from lumara_web.storage import conversation_store, review_store

from .helpers import connect, error_check, get_json

UNKNOWN_ID = 987654
MAX_REQUEST = 1_000_000  # default max_request_bytes


# -- helpers ----------------------------------------------------------------------------
@pytest.fixture
def conn(app):
    conn = connect(app)
    yield conn
    conn.close()


@pytest.fixture
def chats(conn):
    """Two conversations, the first with a user message and an answer; the second newer."""
    first = conversation_store.create_conversation(conn, "Where is the kettle?")
    conversation_store.add_message(conn, first.id, "user", "Where is the kettle?")
    conversation_store.add_message(
        conn, first.id, "assistant", "In the left cupboard.", stats={"tokens": 5},
        memories=[{"id": 1, "content": "kettle: left cupboard", "type": "knowledge",
                   "similarity": 0.93}])
    second = conversation_store.create_conversation(conn, "Standup")
    return [first.id, second.id]


@pytest.fixture
def expect_error(app, embedder, chats):
    """expect_error(send, status, code): send() must fail so, changing nothing."""
    return error_check(app, embedder)


# -- list -------------------------------------------------------------------------------
def test_list_on_an_empty_store(client):
    assert get_json(client, "/api/conversations") == {"items": [], "total": 0, "limit": 50,
                                                      "offset": 0}


def test_list_is_most_recently_active_first_with_message_counts(client, conn, chats):
    first, second = chats
    body = get_json(client, "/api/conversations")
    assert [item["id"] for item in body["items"]] == [second, first]
    assert [item["message_count"] for item in body["items"]] == [0, 2]
    assert set(body["items"][0]) == {"id", "title", "created_at", "updated_at",
                                     "message_count"}
    conversation_store.add_message(conn, first, "user", "and the mugs?")
    body = get_json(client, "/api/conversations")
    assert [(item["id"], item["message_count"]) for item in body["items"]] == [(first, 3),
                                                                               (second, 0)]


def test_list_pages_with_limit_and_offset(client, conn):
    ids = [conversation_store.create_conversation(conn, f"chat {i}").id for i in range(5)]
    body = get_json(client, "/api/conversations", query_string={"limit": 2, "offset": 1})
    assert body["total"] == 5 and body["limit"] == 2 and body["offset"] == 1
    assert [item["id"] for item in body["items"]] == [ids[3], ids[2]]
    body = get_json(client, "/api/conversations", query_string={"offset": 5})
    assert body["items"] == [] and body["total"] == 5


# -- get --------------------------------------------------------------------------------
def test_get_returns_the_conversation_and_its_messages_oldest_first(client, chats):
    body = get_json(client, f"/api/conversations/{chats[0]}")
    assert list(body) == ["conversation", "messages"]
    assert body["conversation"]["id"] == chats[0]
    assert body["conversation"]["title"] == "Where is the kettle?"
    assert body["conversation"]["message_count"] == 2
    user, answer = body["messages"]
    assert (user["role"], user["content"]) == ("user", "Where is the kettle?")
    assert (answer["role"], answer["content"]) == ("assistant", "In the left cupboard.")
    assert user["id"] < answer["id"]
    assert answer["memories"][0]["similarity"] == 0.93 and answer["stats"] == {"tokens": 5}
    assert answer["status"] == "complete" and answer["conversation_id"] == chats[0]


def test_get_a_conversation_without_messages(client, chats):
    body = get_json(client, f"/api/conversations/{chats[1]}")
    assert body["messages"] == [] and body["conversation"]["message_count"] == 0


# -- rename -----------------------------------------------------------------------------
def test_patch_renames_with_the_title_stripped(client, chats):
    response = client.patch(f"/api/conversations/{chats[0]}",
                            json={"title": "  Kitchen things \n"})
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["conversation"]
    assert body["conversation"]["title"] == "Kitchen things"
    assert body["conversation"]["message_count"] == 2
    stored = get_json(client, f"/api/conversations/{chats[0]}")["conversation"]
    assert stored["title"] == "Kitchen things"


def test_patch_accepts_the_longest_title_and_any_unicode(client, chats):
    for title in ["t" * 200, "Ça marche 🙂", "x"]:
        response = client.patch(f"/api/conversations/{chats[0]}", json={"title": title})
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["conversation"]["title"] == title


def test_renaming_keeps_the_conversation_in_its_place(client, chats):
    # chats[1] is newer; renaming the older one is not activity and must not lift it.
    client.patch(f"/api/conversations/{chats[0]}", json={"title": "renamed"})
    items = get_json(client, "/api/conversations")["items"]
    assert [item["id"] for item in items] == [chats[1], chats[0]]


# -- delete -----------------------------------------------------------------------------
def test_delete_removes_the_conversation_and_its_messages(client, app, conn, chats):
    suggestion = review_store.add_suggestion(conn, content="kettle: left cupboard",
                                             type="knowledge", tags=[], confidence=0.9,
                                             conversation_id=chats[0])
    response = client.delete(f"/api/conversations/{chats[0]}")
    assert response.status_code == 200
    deleted = response.get_json()["deleted"]
    assert deleted["id"] == chats[0] and deleted["message_count"] == 2

    assert client.get(f"/api/conversations/{chats[0]}").status_code == 404
    assert [item["id"] for item in get_json(client, "/api/conversations")["items"]] == [chats[1]]
    assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0  # cascaded
    assert review_store.get_suggestion(conn, suggestion.id).conversation_id is None


def test_delete_leaves_other_conversations_messages(client, conn, chats):
    conversation_store.add_message(conn, chats[1], "user", "standup is at nine")
    assert client.delete(f"/api/conversations/{chats[0]}").status_code == 200
    messages = get_json(client, f"/api/conversations/{chats[1]}")["messages"]
    assert [m["content"] for m in messages] == ["standup is at nine"]


def test_deleting_twice_is_404_the_second_time(client, chats, expect_error):
    assert client.delete(f"/api/conversations/{chats[0]}").status_code == 200
    expect_error(lambda: client.delete(f"/api/conversations/{chats[0]}"), 404,
                 "conversation_not_found")
    expect_error(lambda: client.patch(f"/api/conversations/{chats[0]}", json={"title": "x"}),
                 404, "conversation_not_found")


# -- bad input --------------------------------------------------------------------------
@pytest.mark.parametrize("body, code", [
    ({}, "invalid_title"),
    ({"title": ""}, "invalid_title"),
    ({"title": "  \n\t "}, "invalid_title"),
    ({"title": "t" * 201}, "invalid_title"),
    ({"title": "  " + "t" * 201 + "  "}, "invalid_title"),
    ({"title": None}, "invalid_title"),
    ({"title": 42}, "invalid_title"),
    ({"title": True}, "invalid_title"),
    ({"title": ["a title"]}, "invalid_title"),
    ({"title": {"text": "a title"}}, "invalid_title"),
    ({"title": "nul \x00 inside"}, "invalid_title"),
    ({"title": "fine", "colour": "red"}, "unknown_field"),
    ({"Title": "fine"}, "unknown_field"),
    ({"title": "fine", "message_count": 0}, "unknown_field"),
])
def test_bad_patch_bodies_are_rejected(client, chats, expect_error, body, code):
    expect_error(lambda: client.patch(f"/api/conversations/{chats[0]}", json=body), 400, code)


@pytest.mark.parametrize("raw, code", [
    (b'{"title": "unterminated', "invalid_json"),
    (b"", "invalid_json"),
    (b'{"title": "x",}', "invalid_json"),
    (b'{"title": NaN}', "invalid_json"),
    (b'{"title": "caf\xe9"}', "invalid_json"),  # Latin-1, not UTF-8
    (b"[" * 5000 + b"]" * 5000, "invalid_json"),
    (b'["title", "x"]', "invalid_body"),
    (b'"a title"', "invalid_body"),
    (b"null", "invalid_body"),
    (b'{"title": "broken \\ud800 text"}', "invalid_title"),  # a lone surrogate
    (b'{"title": "nul \\u0000 escaped"}', "invalid_title"),
])
def test_malformed_patch_bodies_are_rejected(client, chats, expect_error, raw, code):
    expect_error(lambda: client.patch(f"/api/conversations/{chats[0]}", data=raw,
                                      content_type="application/json"), 400, code)


@pytest.mark.parametrize("kwargs", [
    {"data": '{"title": "x"}', "content_type": "text/plain"},
    {"data": {"title": "x"}},  # a form post
    {"data": b'{"title": "x"}'},  # no Content-Type at all
], ids=["text-plain", "form-urlencoded", "missing"])
def test_patch_needs_a_json_content_type(client, chats, expect_error, kwargs):
    expect_error(lambda: client.patch(f"/api/conversations/{chats[0]}", **kwargs),
                 415, "unsupported_media_type")


def test_an_oversized_patch_body_is_refused(client, chats, expect_error):
    raw = json.dumps({"title": "x" * MAX_REQUEST}).encode()
    expect_error(lambda: client.patch(f"/api/conversations/{chats[0]}", data=raw,
                                      content_type="application/json"),
                 413, "request_entity_too_large")


def test_patch_validates_the_body_even_for_an_unknown_id(client, expect_error):
    expect_error(lambda: client.patch(f"/api/conversations/{UNKNOWN_ID}", json={"title": ""}),
                 400, "invalid_title")


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
@pytest.mark.parametrize("conversation_id", [UNKNOWN_ID, 0, 2**63 - 1, 2**63, 10**19 - 1])
def test_unknown_ids_are_404(client, expect_error, method, conversation_id):
    send = getattr(client, method)
    kwargs = {"json": {"title": "x"}} if method == "patch" else {}
    expect_error(lambda: send(f"/api/conversations/{conversation_id}", **kwargs), 404,
                 "conversation_not_found")


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
@pytest.mark.parametrize("conversation_id", [
    "abc", "1.5", "-1", "1e3", "0x1", "%20", "１", "1" + "0" * 19, "9" * 5000])
def test_ids_that_are_not_integers_are_404(client, expect_error, method, conversation_id):
    send = getattr(client, method)
    kwargs = {"json": {"title": "x"}} if method == "patch" else {}
    expect_error(lambda: send(f"/api/conversations/{conversation_id}", **kwargs), 404,
                 "not_found")


@pytest.mark.parametrize("params, code", [
    ({"limit": "0"}, "invalid_limit"),
    ({"limit": "-5"}, "invalid_limit"),
    ({"limit": "abc"}, "invalid_limit"),
    ({"limit": "201"}, "invalid_limit"),
    ({"limit": "1.5"}, "invalid_limit"),
    ({"limit": "9" * 5000}, "invalid_limit"),
    ({"offset": "-1"}, "invalid_offset"),
    ({"offset": "abc"}, "invalid_offset"),
    ({"offset": "9" * 30}, "invalid_offset"),
])
def test_bad_list_parameters_are_rejected(client, expect_error, params, code):
    expect_error(lambda: client.get("/api/conversations", query_string=params), 400, code)


@pytest.mark.parametrize("method, path, allowed", [
    ("put", "/api/conversations/1", {"GET", "PATCH", "DELETE"}),
    ("delete", "/api/conversations", {"GET"}),
])
def test_wrong_methods_are_405_json(client, expect_error, method, path, allowed):
    response = expect_error(lambda: getattr(client, method)(path, json={"title": "x"}),
                            405, "method_not_allowed")
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


@pytest.mark.parametrize("path", ["/api/conversations/1/extra", "/api/conversations/1/"])
def test_unknown_conversation_paths_are_404_json(client, expect_error, path):
    expect_error(lambda: client.get(path), 404, "not_found")
