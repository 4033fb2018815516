"""ConversationService on a real migrated SQLite file, without Flask: what the conversations
API calls, including the not-found error every route answers with."""

from __future__ import annotations

import pytest

from lumara_web.chat.conversations import ConversationService
from lumara_web.errors import NotFound
from lumara_web.memory.validation import Page
from lumara_web.storage import conversation_store

conversations = ConversationService()


def test_get_returns_the_conversation_and_its_messages_oldest_first(conn):
    made = conversation_store.create_conversation(conn, "Kettle")
    conversation_store.add_message(conn, made.id, "user", "where is it?")
    conversation_store.add_message(conn, made.id, "assistant", "Left cupboard.")
    conversation, messages = conversations.get(conn, made.id)
    assert conversation.title == "Kettle" and conversation.message_count == 2
    assert [message.content for message in messages] == ["where is it?", "Left cupboard."]


def test_list_pages_most_recently_active_first(conn):
    ids = [conversation_store.create_conversation(conn, str(i)).id for i in range(3)]
    items, total = conversations.list(conn, Page(limit=2, offset=0))
    assert total == 3 and [item.id for item in items] == ids[::-1][:2]


def test_rename_and_delete_return_the_conversation(conn):
    made = conversation_store.create_conversation(conn, "old")
    assert conversations.rename(conn, made.id, "new").title == "new"
    assert conversations.delete(conn, made.id).title == "new"
    assert conversation_store.get_conversation(conn, made.id) is None


@pytest.mark.parametrize("call", [
    lambda conn: conversations.get(conn, 404),
    lambda conn: conversations.rename(conn, 404, "title"),
    lambda conn: conversations.delete(conn, 404),
], ids=["get", "rename", "delete"])
def test_an_unknown_id_is_conversation_not_found(conn, call):
    with pytest.raises(NotFound) as raised:
        call(conn)
    assert raised.value.code == "conversation_not_found"
    assert raised.value.message == "No conversation has id 404."
