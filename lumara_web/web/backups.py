"""Backups from the web: list them, make one now, restore one while the server runs
(storage/backups.py does the work; Services.restore_backup refuses while a job writes)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from .context import current_services

bp = Blueprint("backups", __name__, url_prefix="/api")


@bp.get("/backups")
def list_backups():
    backups = current_services().backups
    return jsonify({"items": [backup.to_dict() for backup in backups.list()],
                    "keep": backups.keep, "folder": str(backups.folder)})


@bp.post("/backups")
def create_backup():
    backup = current_services().backups.create("manual")
    return jsonify({"backup": backup.to_dict()}), 201


@bp.post("/backups/<name>/restore")
def restore_backup(name: str):
    # The name is checked against the backup naming pattern before any path is made of it:
    # 400 for anything else (no "..", no folder), 404 for a well-formed name not there.
    return jsonify(current_services().restore_backup(name).to_dict())
