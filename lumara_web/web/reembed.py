"""Re-embedding every memory from the web: start the background job, read its progress
(reembed_job.py does the work)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from ..errors import ModelUnavailable
from ..memory.reembed_job import ReembedJob
from .context import current_services

bp = Blueprint("reembed", __name__, url_prefix="/api")

def reembed_job() -> ReembedJob:
    return current_services().reembed


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
