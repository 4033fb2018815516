"""The memories JSON API. Views stay short: validate, call the service, respond."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from . import validation
from .url_ids import refuse_impossible_ids, use_id_converter
from .web_context import get_db, json_body, lumara

bp = Blueprint("api", __name__, url_prefix="/api")

# Registered before the routes below, which are added to the app in definition order.
use_id_converter(bp, "memory_id")
refuse_impossible_ids(bp, memory_id="memory_not_found")


@bp.post("/memories")
def add_memory():
    services = lumara()
    new = validation.parse_new_memory(json_body(), services.settings)
    memory, findings = services.memories.add(get_db(), new)
    return jsonify({"memory": memory.to_dict(), **findings.to_dict()}), 201


@bp.post("/memories/check")
def check_memory():
    services = lumara()
    new = validation.parse_new_memory(json_body(), services.settings)
    return jsonify(services.memories.check(get_db(), new.content).to_dict())


@bp.get("/memories")
def list_memories():
    services = lumara()
    query = validation.parse_list_query(request.args, services.settings)
    items, total = services.memories.list(get_db(), query)
    return jsonify({"items": [memory.to_dict() for memory in items], "total": total,
                    "limit": query.limit, "offset": query.offset})


@bp.get("/memories/search")
def search_memories():
    services = lumara()
    query = validation.parse_search_query(request.args, services.settings)
    return jsonify(services.memories.search(get_db(), query).to_dict())


@bp.get("/memories/<memory_id:memory_id>")
def get_memory(memory_id: int):
    return jsonify({"memory": lumara().memories.get(get_db(), memory_id).to_dict()})


@bp.patch("/memories/<memory_id:memory_id>")
def edit_memory(memory_id: int):
    services = lumara()
    patch = validation.parse_memory_patch(json_body(), services.settings)
    memory, findings = services.memories.edit(get_db(), memory_id, patch)
    return jsonify({"memory": memory.to_dict(), **findings.to_dict()})


@bp.get("/memories/<memory_id:memory_id>/history")
def memory_history(memory_id: int):
    memory, versions = lumara().memories.history(get_db(), memory_id)
    return jsonify({"memory": memory.to_dict(),
                    "versions": [version.to_dict() for version in versions]})


@bp.post("/memories/<memory_id:memory_id>/restore")
def restore_memory(memory_id: int):
    version = validation.parse_restore_request(json_body())
    memory, findings = lumara().memories.restore(get_db(), memory_id, version)
    return jsonify({"memory": memory.to_dict(), **findings.to_dict()})


@bp.delete("/memories/<memory_id:memory_id>")
def delete_memory(memory_id: int):
    deleted = lumara().memories.delete(get_db(), memory_id)
    return jsonify({"deleted": deleted.to_dict()})
