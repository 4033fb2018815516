"""Re-embedding every memory from the web: start the background job, read its progress
(reembed_job.py does the work)."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify

from .errors import ModelUnavailable
from .reembed_job import ReembedJob
from .web_context import Lumara

bp = Blueprint("reembed", __name__, url_prefix="/api")

EXTENSION = "lumara_reembed"


def init_app(app: Flask, services: Lumara) -> ReembedJob:
    """Register the routes and the app's one job; at start-up it re-embeds by itself if the
    stored vectors come from another model than the current one."""
    job = ReembedJob(services.settings["db_path"], services.embeddings)
    app.extensions[EXTENSION] = job
    app.register_blueprint(bp)
    job.start_if_model_changed()
    return job


def reembed_job() -> ReembedJob:
    return current_app.extensions[EXTENSION]


@bp.get("/reembed")
def reembed_status():
    return jsonify(reembed_job().status())


@bp.post("/reembed")
def start_reembed():
    job = reembed_job()
    model = job.embeddings.model
    if model.state != "ready":
        # Refused rather than queued behind the load: a bar that never moves explains nothing.
        failed = model.state == "error"
        reason = f"could not be loaded ({model.error})" if failed else "is still loading"
        raise ModelUnavailable(f"The embedding model {reason}; re-embedding can start once it "
                               "is ready (see /health).",
                               code="model_failed" if failed else "model_loading")
    return jsonify(job.start("requested")), 202
