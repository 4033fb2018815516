"""The memories JSON API. Views stay short: validate, call the service, respond."""

from __future__ import annotations

from flask import Blueprint, jsonify, request, url_for

from ..memory import validation
from .context import current_services, get_db, json_body, page_of
from .url_ids import refuse_impossible_ids, use_id_converter

bp = Blueprint("api", __name__, url_prefix="/api")

# Registered before the routes below, which are added to the app in definition order.
use_id_converter(bp, "memory_id")
refuse_impossible_ids(bp, memory_id="memory_not_found",
                      deleted_memory_id="trash_item_not_found")


@bp.post("/memories")
def add_memory():
    services = current_services()
    new = validation.parse_new_memory(json_body(), services.settings)
    memory, findings = services.memories.add(get_db(), new)
    return jsonify({"memory": memory.to_dict(), **findings.to_dict()}), 201


@bp.post("/memories/check")
def check_memory():
    services = current_services()
    new = validation.parse_new_memory(json_body(), services.settings)
    return jsonify(services.memories.check(get_db(), new.content).to_dict())


@bp.get("/memories")
def list_memories():
    services = current_services()
    query = validation.parse_list_query(request.args, services.settings)
    items, total = services.memories.list(get_db(), query)
    return page_of(items, total, query)


@bp.get("/memories/search")
def search_memories():
    services = current_services()
    query = validation.parse_search_query(request.args, services.settings)
    return jsonify(services.memories.search(get_db(), query).to_dict())


@bp.get("/memories/<memory_id:memory_id>")
def get_memory(memory_id: int):
    return jsonify({"memory": current_services().memories.get(get_db(), memory_id).to_dict()})


@bp.patch("/memories/<memory_id:memory_id>")
def edit_memory(memory_id: int):
    services = current_services()
    patch = validation.parse_memory_patch(json_body(), services.settings)
    memory, findings = services.memories.edit(get_db(), memory_id, patch)
    return jsonify({"memory": memory.to_dict(), **findings.to_dict()})


@bp.get("/memories/<memory_id:memory_id>/history")
def memory_history(memory_id: int):
    memory, versions = current_services().memories.history(get_db(), memory_id)
    return jsonify({"memory": memory.to_dict(),
                    "versions": [version.to_dict() for version in versions]})


@bp.post("/memories/<memory_id:memory_id>/restore")
def restore_memory(memory_id: int):
    version = validation.parse_restore_request(json_body())
    memory, findings = current_services().memories.restore(get_db(), memory_id, version)
    return jsonify({"memory": memory.to_dict(), **findings.to_dict()})


@bp.delete("/memories/<memory_id:memory_id>")
def delete_memory(memory_id: int):
    deleted = current_services().memories.delete(get_db(), memory_id)
    return jsonify({"deleted": deleted.to_dict(),
                    "undo": {"method": "POST",
                             "url": url_for(".restore_deleted_memory",
                                            deleted_memory_id=memory_id)}})


# -- the trash: deleted memories, restorable until purged -----------------------------------
@bp.get("/trash")
def list_trash():
    services = current_services()
    page = validation.parse_page(request.args, services.settings)
    items, total = services.memories.trash(get_db(), page)
    return page_of(items, total, page, trash_days=services.settings["trash_days"])


@bp.post("/trash/<memory_id:deleted_memory_id>/restore")
def restore_deleted_memory(deleted_memory_id: int):
    memory = current_services().memories.restore_deleted(get_db(), deleted_memory_id)
    return jsonify({"memory": memory.to_dict()}), 201


@bp.delete("/trash/<memory_id:deleted_memory_id>")
def purge_deleted_memory(deleted_memory_id: int):
    current_services().memories.purge(get_db(), deleted_memory_id)
    return jsonify({"purged": 1})


@bp.delete("/trash")
def empty_trash():
    services = current_services()
    services.backups.before("empty-trash")  # BackupFailed (503): the trash stays as it is
    return jsonify({"purged": services.memories.empty_trash(get_db())})
