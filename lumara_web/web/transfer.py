"""Export and import of all memories (memory/transfer.py does the work)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..errors import NotFound, ValidationError
from ..memory import transfer
from .context import current_services, get_db, json_body

bp = Blueprint("transfer", __name__, url_prefix="/api")


@bp.get("/export")
def export_memories():
    wanted = request.args.get("format", "json")
    if wanted not in transfer.EXPORT_FORMATS:
        raise ValidationError(f"format={wanted[:40]!r} is not one of "
                              f"{', '.join(transfer.EXPORT_FORMATS)}.", code="invalid_format")
    exported = transfer.export(get_db(), wanted,
                               model_id=current_services().embeddings.model_id,
                               include_vectors=request.args.get("vectors") == "1",
                               include_versions=request.args.get("versions") == "1")
    response = Response(exported.text, content_type=exported.media_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{exported.filename}"'
    return response


@bp.post("/import")
def import_memories():
    services = current_services()
    # A whole export, far above the app-wide request limit (see transfer.MAX_IMPORT_BYTES).
    # Nothing has been read yet, and every body limit is read when the body is.
    request.max_content_length = transfer.MAX_IMPORT_BYTES
    # Checked whole here, so a bad file is a 400 that changes nothing; the job only merges.
    document = transfer.parse_import(json_body(), services.settings)
    started = services.import_job.start(document)
    return jsonify(started), 202, {"Location": started["status_url"]}


@bp.get("/import")
def import_status():
    """The running import, or the last one since the server started (the page reads this
    after a reload to show a running import's progress)."""
    return jsonify(current_services().import_job.status())


@bp.get("/import/<int:import_id>")
def one_import_status(import_id: int):
    status = current_services().import_job.status()
    if status["id"] != import_id:
        raise NotFound(f"No import {import_id} is known: GET /api/import shows the running or "
                       "last import (imports are numbered afresh when the server starts).",
                       code="import_not_found")
    return jsonify(status)
