"""The conversations JSON API: list, read, rename and delete past chats. (The chat itself,
which creates them, lives elsewhere.) Views stay short: validate, call the service, respond."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, jsonify, request

from ..chat.rendering import render_markdown
from ..memory import validation
from .context import current_services, get_db, json_body, page_of
from .url_ids import refuse_impossible_ids, use_id_converter

if TYPE_CHECKING:
    from ..storage.conversation_store import Message

bp = Blueprint("conversations_api", __name__, url_prefix="/api")

# Registered before the routes below, which are added to the app in definition order.
use_id_converter(bp)
refuse_impossible_ids(bp, conversation_id="conversation_not_found")


@bp.get("/conversations")
def list_conversations():
    services = current_services()
    page = validation.parse_page(request.args, services.settings)
    items, total = services.conversations.list(get_db(), page)
    return page_of(items, total, page)


@bp.get("/conversations/<id:conversation_id>")
def get_conversation(conversation_id: int):
    conversation, messages = current_services().conversations.get(get_db(), conversation_id)
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
    renamed = current_services().conversations.rename(get_db(), conversation_id, title)
    return jsonify({"conversation": renamed.to_dict()})


@bp.delete("/conversations/<id:conversation_id>")
def delete_conversation(conversation_id: int):
    deleted = current_services().conversations.delete(get_db(), conversation_id)
    return jsonify({"deleted": deleted.to_dict()})
