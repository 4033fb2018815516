"""Pages and the health report."""

from __future__ import annotations

import urllib.parse

from flask import Blueprint, jsonify, render_template

from ..access import is_loopback
from ..config import MEMORY_TYPES
from ..memory import validation
from ..version import __version__
from . import security
from .context import current_services, get_db
from .metrics import MAX_PAGE_LOAD_MS
from .reembed import reembed_job

bp = Blueprint("views", __name__)


@bp.get("/")
def index():
    return render_template("index.html", health=health_report(), page_config=page_config())


def page_config() -> dict:
    """What the page's forms and scripts must agree with the server on (static/js/
    page_config.js reads it): the memory types and the length limits the API enforces."""
    settings = current_services().settings
    return {
        "memory_types": list(MEMORY_TYPES),
        "limits": {
            "message_chars": settings["max_message_chars"],
            "content_chars": settings["max_content_chars"],
            "title_chars": validation.MAX_TITLE_CHARS,
            "page_load_ms": MAX_PAGE_LOAD_MS,
        },
    }


@bp.get("/health")
def health():
    return jsonify(health_report())


def health_report() -> dict:
    """Overall status: 'ok' once both models are ready, 'starting' while one loads, 'error'
    when one failed or the database has problems (the fields say which and why)."""
    services = current_services()
    conn = get_db()
    embedder = services.embeddings.status()
    chat = services.engine.status()
    states = {embedder["state"], chat["state"]}
    status = "error" if "error" in states else "ok" if states == {"ready"} else "starting"
    if services.startup_problems:
        status = "error"
    return {
        "status": status,
        "version": __version__,
        # No code path opens a connection beyond this machine, unless the chat model is
        # an --engine-url on another host.
        "offline": _stays_on_this_machine(services.settings["engine_url"]),
        "security": security.status(),
        "database": services.database_status(conn),
        "embedder": embedder,
        "chat_model": chat,
        # Searches use sqlite-vec (slower at scale, same answers) while this is "loading".
        "search_index": services.vector_index.readiness(),
        # Re-embedding (started at start-up when the model changed): searches meanwhile
        # compare against a mix of old and new vectors.
        "reembed": reembed_job().status(),
        # The running (or last) import: the page shows its progress bar after a reload.
        "import": services.import_job.status(),
    }


def _stays_on_this_machine(engine_url: str | None) -> bool:
    return not engine_url or is_loopback(urllib.parse.urlsplit(engine_url).hostname or "")
