"""conversation_store against a real migrated SQLite file: conversations, their messages,
"most recently active first", and what deleting a conversation takes with it."""

from __future__ import annotations

import pytest

from lumara_web.storage import conversation_store, db, review_store


def count(conn, table):
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def listed_ids(conn, **paging):
    items, _total = conversation_store.list_conversations(conn, **paging)
    return [item.id for item in items]


# -- create, get, messages --------------------------------------------------------------
def test_foreign_keys_are_enforced_on_every_connection(conn):
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_create_and_get(conn):
    created = conversation_store.create_conversation(conn, "Kettle questions")
    assert created.title == "Kettle questions" and created.message_count == 0
    assert created.created_at == created.updated_at
    assert conversation_store.get_conversation(conn, created.id) == created
    assert conversation_store.get_conversation(conn, created.id + 1) is None


def test_messages_round_trip_oldest_first_and_are_counted(conn):
    conversation = conversation_store.create_conversation(conn, "c")
    receipt = [{"id": 7, "content": "kettle in the left cupboard", "type": "knowledge",
                "similarity": 0.91}]
    first = conversation_store.add_message(conn, conversation.id, "user", "where is it?")
    second = conversation_store.add_message(conn, conversation.id, "assistant", "Left.",
                                            status="stopped", memories=receipt,
                                            stats={"tokens": 3})
    messages = conversation_store.list_messages(conn, conversation.id)
    assert messages == [first, second]
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].memories == receipt and messages[1].stats == {"tokens": 3}
    assert messages[1].status == "stopped" and messages[0].status == "complete"
    assert messages[0].memories == [] and messages[0].stats == {}
    assert conversation_store.get_conversation(conn, conversation.id).message_count == 2


def test_adding_a_message_to_an_unknown_conversation_fails_and_writes_nothing(conn):
    sqlite, _ = db.driver()
    with pytest.raises(sqlite.IntegrityError):
        conversation_store.add_message(conn, 12345, "user", "hello")
    assert count(conn, "messages") == 0


def test_recent_messages_are_the_last_n_oldest_first(conn):
    conversation = conversation_store.create_conversation(conn, "c")
    ids = [conversation_store.add_message(conn, conversation.id, "user", f"m{i}").id
           for i in range(5)]
    recent = conversation_store.recent_messages(conn, conversation.id, limit=2)
    assert [m.id for m in recent] == ids[3:]
    before = conversation_store.recent_messages(conn, conversation.id, limit=2,
                                                before_id=ids[3])
    assert [m.id for m in before] == ids[1:3]


# -- most recently active first ---------------------------------------------------------
def test_list_is_most_recently_active_first(conn):
    a, b, c = (conversation_store.create_conversation(conn, title).id for title in "abc")
    assert listed_ids(conn) == [c, b, a]
    conversation_store.add_message(conn, a, "user", "hello again")
    assert listed_ids(conn) == [a, c, b]
    conversation_store.rename_conversation(conn, b, "renamed")  # not activity
    assert listed_ids(conn) == [a, c, b]


def test_activity_times_strictly_increase_even_within_one_millisecond(conn):
    # These writes take microseconds: with plain millisecond timestamps they tie, and the
    # tie-break (id) would put an older conversation with a newer message second.
    ids = [conversation_store.create_conversation(conn, str(i)).id for i in range(20)]
    for conversation_id in ids[:10]:
        conversation_store.add_message(conn, conversation_id, "user", "hi")
    assert listed_ids(conn, limit=50) == ids[9::-1] + ids[:9:-1]
    stamps = [row[0] for row in conn.execute("SELECT updated_at FROM conversations")]
    assert len(set(stamps)) == len(stamps)


def test_activity_times_keep_their_order_when_the_clock_steps_back(conn, monkeypatch):
    first = conversation_store.create_conversation(conn, "now")
    monkeypatch.setattr(conversation_store, "utc_now", lambda: "2001-01-01T00:00:00.000Z")
    second = conversation_store.create_conversation(conn, "after the clock stepped back")
    assert second.updated_at > first.updated_at
    assert second.updated_at.endswith("Z") and len(second.updated_at) == len(first.updated_at)
    message = conversation_store.add_message(conn, first.id, "user", "still newest")
    assert message.created_at > second.updated_at
    assert listed_ids(conn) == [first.id, second.id]


def test_list_pages_with_total(conn):
    ids = [conversation_store.create_conversation(conn, str(i)).id for i in range(5)]
    items, total = conversation_store.list_conversations(conn, limit=2, offset=1)
    assert total == 5 and [item.id for item in items] == [ids[3], ids[2]]
    items, total = conversation_store.list_conversations(conn, limit=2, offset=5)
    assert total == 5 and items == []


def test_list_counts_each_conversations_messages(conn):
    a = conversation_store.create_conversation(conn, "a").id
    b = conversation_store.create_conversation(conn, "b").id
    for _ in range(3):
        conversation_store.add_message(conn, a, "user", "x")
    counts = {item.id: item.message_count
              for item in conversation_store.list_conversations(conn)[0]}
    assert counts == {a: 3, b: 0}


# -- rename, delete ---------------------------------------------------------------------
def test_rename(conn):
    conversation = conversation_store.create_conversation(conn, "old")
    conversation_store.add_message(conn, conversation.id, "user", "x")
    renamed = conversation_store.rename_conversation(conn, conversation.id, "new")
    assert renamed.title == "new" and renamed.message_count == 1
    assert renamed.created_at == conversation.created_at
    assert conversation_store.get_conversation(conn, conversation.id).title == "new"


def test_renaming_an_unknown_conversation_returns_none_and_creates_nothing(conn):
    assert conversation_store.rename_conversation(conn, 99, "new") is None
    assert count(conn, "conversations") == 0


def test_delete_takes_the_messages_and_unlinks_suggestions(conn):
    doomed = conversation_store.create_conversation(conn, "doomed")
    kept = conversation_store.create_conversation(conn, "kept")
    message = conversation_store.add_message(conn, doomed.id, "user", "I moved to Oslo")
    conversation_store.add_message(conn, doomed.id, "assistant", "Noted.")
    conversation_store.add_message(conn, kept.id, "user", "keep me")
    suggestion = review_store.add_suggestion(conn, content="The user lives in Oslo",
                                             type="knowledge", tags=[], confidence=0.9,
                                             conversation_id=doomed.id, message_id=message.id)

    deleted = conversation_store.delete_conversation(conn, doomed.id)

    assert deleted.id == doomed.id and deleted.message_count == 2
    assert conversation_store.get_conversation(conn, doomed.id) is None
    assert conversation_store.list_messages(conn, doomed.id) == []
    assert conn.execute("SELECT count(*) FROM messages WHERE conversation_id = ?",
                        (doomed.id,)).fetchone()[0] == 0
    assert [m.content for m in conversation_store.list_messages(conn, kept.id)] == ["keep me"]
    survivor = review_store.get_suggestion(conn, suggestion.id)
    assert survivor.conversation_id is None and survivor.message_id is None
    assert survivor.content == suggestion.content and survivor.status == "pending"


def test_deleting_an_unknown_conversation_returns_none(conn):
    kept = conversation_store.create_conversation(conn, "kept")
    assert conversation_store.delete_conversation(conn, kept.id + 1) is None
    assert listed_ids(conn) == [kept.id]
