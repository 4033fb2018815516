"""The review JSON API: suggested memories (accept, with optional edits, or dismiss) and
possible contradictions (resolve). Views stay short: validate, call the service, respond."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..memory import validation
from .context import current_services, get_db, json_body
from .url_ids import refuse_impossible_ids, use_id_converter

bp = Blueprint("review_api", __name__, url_prefix="/api")

# Registered before the routes below, which are added to the app in definition order.
use_id_converter(bp)
refuse_impossible_ids(bp, suggestion_id="suggestion_not_found",
                      contradiction_id="contradiction_not_found")


@bp.get("/suggestions")
def list_suggestions():
    status = validation.parse_suggestion_status(request.args)
    items = current_services().review.list_suggestions(get_db(), status)
    return jsonify({"items": [item.to_dict() for item in items]})


@bp.post("/suggestions/<id:suggestion_id>/accept")
def accept_suggestion(suggestion_id: int):
    services = current_services()
    edits = validation.parse_suggestion_edits(_optional_json_body(), services.settings)
    suggestion, memory, findings = services.review.accept_suggestion(get_db(), suggestion_id,
                                                                     edits)
    return jsonify({"suggestion": suggestion.to_dict(), "memory": memory.to_dict(),
                    **findings.to_dict()}), 201


@bp.post("/suggestions/<id:suggestion_id>/dismiss")
def dismiss_suggestion(suggestion_id: int):
    suggestion = current_services().review.dismiss_suggestion(get_db(), suggestion_id)
    return jsonify({"suggestion": suggestion.to_dict()})


@bp.post("/suggestions/<id:suggestion_id>/reopen")
def reopen_suggestion(suggestion_id: int):
    """Undo of accept or dismiss (the page's toast): pending again; an accepted one's
    memory goes to the trash."""
    suggestion, deleted = current_services().review.reopen_suggestion(get_db(), suggestion_id)
    return jsonify({"suggestion": suggestion.to_dict(),
                    "deleted": deleted.to_dict() if deleted else None})


@bp.get("/contradictions")
def list_contradictions():
    status = validation.parse_contradiction_status(request.args)
    items = current_services().review.list_contradictions(get_db(), status)
    return jsonify({"items": [item.to_dict() for item in items]})


@bp.post("/contradictions/<id:contradiction_id>/resolve")
def resolve_contradiction(contradiction_id: int):
    resolution = validation.parse_resolution(json_body())
    contradiction, deleted = current_services().review.resolve_contradiction(
        get_db(), contradiction_id, resolution)
    return jsonify({"contradiction": contradiction.to_dict(),
                    "deleted": deleted.to_dict() if deleted else None})


def _optional_json_body() -> dict:
    """The JSON body if there is one; {} when none was sent (an empty body, whatever its
    content type). A body that is present must pass json_body's checks."""
    # get_data honours MAX_CONTENT_LENGTH; cached, so json_body reads the same bytes.
    if not request.get_data(cache=True):
        return {}
    return json_body()
