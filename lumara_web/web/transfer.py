"""Export and import of all memories (transfer.py does the work)."""

from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify, request

from ..errors import ValidationError
from ..memory import transfer
from ..storage import store
from .context import current_services, get_db, json_body
from .reembed import reembed_job

bp = Blueprint("transfer", __name__, url_prefix="/api")


@bp.get("/export")
def export_memories():
    services = current_services()
    wanted = request.args.get("format", "json")
    if wanted not in ("json", "markdown"):
        raise ValidationError(f"format={wanted[:40]!r} is not one of json, markdown.",
                              code="invalid_format")
    exported_at = store.utc_now()
    if wanted == "markdown":
        text = transfer.export_markdown(get_db(), exported_at=exported_at)
        return _download(text, "text/markdown; charset=utf-8", exported_at, "md")
    document = transfer.build_export(get_db(), model_id=services.embeddings.model_id,
                                     include_vectors=request.args.get("vectors") == "1",
                                     include_versions=request.args.get("versions") == "1",
                                     exported_at=exported_at)
    return _download(json.dumps(document, ensure_ascii=False), "application/json",
                     exported_at, "json")


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


def _download(body: str, mimetype: str, exported_at: str, extension: str) -> Response:
    response = Response(body, mimetype=mimetype)
    filename = f"lumara-export-{exported_at[:10]}.{extension}"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
