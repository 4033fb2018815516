"""The conversations JSON API: list, read, rename and delete past chats. (The chat itself,
which creates them, lives elsewhere.) Views stay short: validate, call the store, respond."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..chat.rendering import render_markdown
from ..errors import NotFound
from ..memory import validation
from ..storage import conversation_store
from ..storage.conversation_store import Conversation, Message
from .context import current_services, get_db, json_body, page_of
from .url_ids import refuse_impossible_ids, use_id_converter

bp = Blueprint("conversations_api", __name__, url_prefix="/api")

# Registered before the routes below, which are added to the app in definition order.
use_id_converter(bp)
refuse_impossible_ids(bp, conversation_id="conversation_not_found")


@bp.get("/conversations")
def list_conversations():
    page = validation.parse_page(request.args, current_services().settings)
    items, total = conversation_store.list_conversations(get_db(), limit=page.limit,
                                                         offset=page.offset)
    return page_of(items, total, page)


@bp.get("/conversations/<id:conversation_id>")
def get_conversation(conversation_id: int):
    conn = get_db()
    conversation = _found(conversation_store.get_conversation(conn, conversation_id),
                          conversation_id)
    messages = conversation_store.list_messages(conn, conversation_id)
    return jsonify({"conversation": conversation.to_dict(),
                    "messages": [_with_html(message) for message in messages]})


def _with_html(message: Message) -> dict:
    """Answers carry their Markdown rendered to sanitized HTML, as the chat's 'done' does."""
    shown = message.to_dict()
    if message.role == "assistant":
        shown["html"] = render_markdown(message.content)
    return shown


@bp.patch("/conversations/<id:conversation_id>")
def rename_conversation(conversation_id: int):
    title = validation.parse_conversation_patch(json_body())
    renamed = conversation_store.rename_conversation(get_db(), conversation_id, title)
    return jsonify({"conversation": _found(renamed, conversation_id).to_dict()})


@bp.delete("/conversations/<id:conversation_id>")
def delete_conversation(conversation_id: int):
    deleted = conversation_store.delete_conversation(get_db(), conversation_id)
    return jsonify({"deleted": _found(deleted, conversation_id).to_dict()})


def _found(conversation: Conversation | None, conversation_id: int) -> Conversation:
    if conversation is None:
        raise NotFound(f"No conversation has id {conversation_id}.",
                       code="conversation_not_found")
    return conversation
