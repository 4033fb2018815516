"""Export and import of all memories (memory/transfer.py does the work)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..errors import ValidationError
from ..memory import transfer
from .context import current_services, get_db, json_body
from .reembed import reembed_job

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
    response = Response(exported.text, mimetype=exported.media_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{exported.filename}"'
    return response


@bp.post("/import")
def import_memories():
    services = current_services()
    # A whole export, far above the app-wide request limit (see transfer.MAX_IMPORT_BYTES).
    # Nothing has been read yet, and every body limit is read when the body is.
    request.max_content_length = transfer.MAX_IMPORT_BYTES
    document = transfer.parse_import(json_body(), services.settings)
    # A large import from another model re-embeds its memories here; GET /api/reembed
    # shows how far it is.
    with reembed_job().reporting("import") as progress:
        result = transfer.apply_import(get_db(), document, embeddings=services.embeddings,
                                       settings=services.settings,
                                       vector_index=services.memories.vector_index,
                                       progress=progress)
    return jsonify(result.to_dict())
