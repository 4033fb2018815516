"""The web layer: Flask-aware and thin. One blueprint per resource, each validating a request,
calling a service and responding; the chat websocket; the security checks every request
passes first."""

from __future__ import annotations

from flask import Flask

from ..services import Services
from . import (
    backups,
    chat_socket,
    context,
    conversations,
    error_handlers,
    mcp_endpoint,
    memories,
    metrics,
    openai_api,
    pages,
    reembed,
    review,
    security,
    transfer,
)


def init_app(app: Flask, services: Services) -> None:
    app.config["MAX_CONTENT_LENGTH"] = services.settings["max_request_bytes"]
    app.json.sort_keys = False  # keep "memory" before its findings, as documented
    context.init_app(app, services)
    security.init_app(app)  # first of the request hooks: refused requests go no further
    metrics.init_app(app)  # times every request that passed the checks
    for module in (memories, conversations, review, transfer, reembed, backups, openai_api,
                   mcp_endpoint, pages, metrics):
        app.register_blueprint(module.bp)
    chat_socket.init_app(app)
    error_handlers.init_app(app)
