"""review_store against a real migrated SQLite file: suggestions and contradictions, their
status filters, settling them once, and what deleting a memory does to them."""

from __future__ import annotations

import pytest

from lumara_web.storage import db, review_store, store

from .fakes import FakeEmbedder


def memory(conn, content):
    return store.insert_memory(conn, content=content, type="knowledge", tags=[],
                               embedding=FakeEmbedder().vector(content)).id


def suggestion(conn, content="The user likes green tea", **fields):
    values = {"type": "knowledge", "tags": ["drinks"], "confidence": 0.8, **fields}
    return review_store.add_suggestion(conn, content=content, **values)


def contradiction(conn, newer, older, **fields):
    values = {"similarity": 0.78, "confidence": 0.9, "explanation": "Oslo vs Bergen",
              **fields}
    return review_store.add_contradiction(conn, memory_id=newer, existing_memory_id=older,
                                          **values)


def ids(items):
    return [item.id for item in items]


# -- suggestions ------------------------------------------------------------------------
def test_add_suggestion_starts_pending_and_unlinked(conn):
    added = suggestion(conn, tags=["drinks", "tea"], confidence=0.65)
    assert added.content == "The user likes green tea" and added.type == "knowledge"
    assert added.tags == ["drinks", "tea"] and added.confidence == 0.65
    assert added.status == "pending" and added.memory_id is None
    assert added.conversation_id is None and added.message_id is None
    assert review_store.get_suggestion(conn, added.id) == added
    assert review_store.get_suggestion(conn, added.id + 1) is None


def test_list_suggestions_filters_by_status_newest_first(conn):
    first, second, third = (suggestion(conn, f"fact number {i}") for i in range(3))
    review_store.settle_suggestion(conn, first.id, "accepted", memory(conn, "fact number 0"))
    review_store.settle_suggestion(conn, second.id, "dismissed")
    assert ids(review_store.list_suggestions(conn)) == [third.id]
    assert ids(review_store.list_suggestions(conn, status="accepted")) == [first.id]
    assert ids(review_store.list_suggestions(conn, status="dismissed")) == [second.id]
    assert ids(review_store.list_suggestions(conn, status=None)) == [third.id, second.id,
                                                                      first.id]


def test_settle_suggestion_only_once(conn):
    added = suggestion(conn)
    memory_id = memory(conn, added.content)
    accepted = review_store.settle_suggestion(conn, added.id, "accepted", memory_id)
    assert accepted.status == "accepted" and accepted.memory_id == memory_id
    assert review_store.settle_suggestion(conn, added.id, "dismissed") is None
    assert review_store.get_suggestion(conn, added.id) == accepted


def test_settling_an_unknown_suggestion_returns_none(conn):
    assert review_store.settle_suggestion(conn, 404, "dismissed") is None


def test_the_schema_refuses_an_unknown_suggestion_status(conn):
    added = suggestion(conn)
    sqlite, _ = db.driver()
    with pytest.raises(sqlite.IntegrityError):
        review_store.settle_suggestion(conn, added.id, "maybe")
    assert review_store.get_suggestion(conn, added.id).status == "pending"


def test_deleting_the_accepted_memory_unlinks_the_suggestion(conn):
    added = suggestion(conn)
    memory_id = memory(conn, added.content)
    review_store.settle_suggestion(conn, added.id, "accepted", memory_id)
    store.delete_memory(conn, memory_id)
    kept = review_store.get_suggestion(conn, added.id)
    assert kept.status == "accepted" and kept.memory_id is None


# -- contradictions ---------------------------------------------------------------------
def test_add_contradiction_starts_pending(conn):
    older, newer = memory(conn, "lives in Bergen"), memory(conn, "lives in Oslo")
    added = contradiction(conn, newer, older)
    assert (added.memory_id, added.existing_memory_id) == (newer, older)
    assert added.status == "pending" and added.resolution is None and added.resolved_at is None
    assert (added.similarity, added.confidence, added.explanation) == (0.78, 0.9,
                                                                       "Oslo vs Bergen")
    assert review_store.get_contradiction(conn, added.id) == added
    assert review_store.get_contradiction(conn, added.id + 1) is None


def test_mark_resolved_only_once(conn):
    added = contradiction(conn, memory(conn, "b"), memory(conn, "a"))
    resolved = review_store.mark_contradiction_resolved(conn, added.id, "keep_both")
    assert resolved.status == "resolved" and resolved.resolution == "keep_both"
    assert resolved.resolved_at is not None
    assert review_store.mark_contradiction_resolved(conn, added.id, "replace") is None
    assert review_store.get_contradiction(conn, added.id) == resolved


def test_the_schema_refuses_an_unknown_resolution(conn):
    added = contradiction(conn, memory(conn, "b"), memory(conn, "a"))
    sqlite, _ = db.driver()
    with pytest.raises(sqlite.IntegrityError):
        review_store.mark_contradiction_resolved(conn, added.id, "shrug")
    assert review_store.get_contradiction(conn, added.id).status == "pending"


def test_list_contradictions_filters_by_status_newest_first(conn):
    a, b, c = memory(conn, "a"), memory(conn, "b"), memory(conn, "c")
    first = contradiction(conn, b, a)
    second = contradiction(conn, c, a)
    third = contradiction(conn, c, b)
    review_store.mark_contradiction_resolved(conn, second.id, "keep_both")
    assert ids(review_store.list_contradictions(conn)) == [third.id, first.id]
    assert ids(review_store.list_contradictions(conn, status="resolved")) == [second.id]
    assert ids(review_store.list_contradictions(conn, status=None)) == [third.id, second.id,
                                                                         first.id]


@pytest.mark.parametrize("gone", ["newer", "older"])
def test_a_pending_contradiction_is_moot_once_either_memory_is_deleted(conn, gone):
    older, newer, other = memory(conn, "a"), memory(conn, "b"), memory(conn, "c")
    moot = contradiction(conn, newer, older)
    live = contradiction(conn, other, older if gone == "newer" else newer)
    store.delete_memory(conn, newer if gone == "newer" else older)
    assert ids(review_store.list_contradictions(conn)) == [live.id]
    row = review_store.get_contradiction(conn, moot.id)
    assert row.status == "pending"  # kept, but not offered for review
    assert (row.memory_id is None) == (gone == "newer")
    assert (row.existing_memory_id is None) == (gone == "older")
    assert ids(review_store.list_contradictions(conn, status=None)) == [live.id, moot.id]


def test_a_resolved_contradiction_keeps_its_history_after_a_memory_is_deleted(conn):
    older, newer = memory(conn, "a"), memory(conn, "b")
    added = contradiction(conn, newer, older)
    review_store.mark_contradiction_resolved(conn, added.id, "replace")
    store.delete_memory(conn, older)
    [kept] = review_store.list_contradictions(conn, status="resolved")
    assert kept.id == added.id and kept.resolution == "replace"
    assert kept.memory_id == newer and kept.existing_memory_id is None
