"""Past chats: list, read, rename and delete conversations. (The chat turn, which creates
them and adds their messages, is chat/service.py.) Plain Python: takes validated values and a
connection, knows no Flask."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..errors import NotFound
from ..memory.validation import Page
from ..storage import conversation_store
from ..storage.conversation_store import Conversation, Message
from .outcomes import with_state


class ConversationService:
    def list(self, conn: Any, page: Page) -> tuple[list[Conversation], int]:
        """One page of conversations, most recently active first, and the total."""
        return conversation_store.list_conversations(conn, limit=page.limit, offset=page.offset)

    def get(self, conn: Any, conversation_id: int) -> tuple[Conversation, list[Message]]:
        """The conversation and all its messages, oldest first; what each turn did
        besides answering as it stands now (outcomes.with_state)."""
        conversation = _found(conversation_store.get_conversation(conn, conversation_id),
                              conversation_id)
        messages = conversation_store.list_messages(conn, conversation_id)
        return conversation, [replace(message, outcomes=[with_state(conn, outcome)
                                                         for outcome in message.outcomes])
                              if message.outcomes else message for message in messages]

    def rename(self, conn: Any, conversation_id: int, title: str) -> Conversation:
        return _found(conversation_store.rename_conversation(conn, conversation_id, title),
                      conversation_id)

    def delete(self, conn: Any, conversation_id: int) -> Conversation:
        """Deletes its messages too; suggestions made in it stay, unlinked."""
        return _found(conversation_store.delete_conversation(conn, conversation_id),
                      conversation_id)


def _found(conversation: Conversation | None, conversation_id: int) -> Conversation:
    if conversation is None:
        raise NotFound(f"No conversation has id {conversation_id}.",
                       code="conversation_not_found")
    return conversation
