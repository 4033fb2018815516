"""POST /mcp: the MCP server over Streamable HTTP (lumara_web/mcp/http.py), as a route of
this app, so the checks every request passes (security.py) guard it too: a page on another
site is refused (403) before anything runs, a foreign Host gets 421, and off the loopback
the access token is needed (`Authorization: Bearer <token>`). Stateless JSON exchanges
only: no GET stream, no session to DELETE."""

from __future__ import annotations

import functools
import io
import threading

from flask import Blueprint, Response, current_app, request

from .context import current_services

bp = Blueprint("mcp", __name__)

EXTENSION = "lumara_mcp"
_creating = threading.Lock()


@bp.post("/mcp")
def mcp_endpoint():
    # Read here, so the app's body limits apply (413 over max_request_bytes, chunked
    # bodies too); the SDK then reads it from memory.
    body = request.get_data(cache=False)
    environ = {**request.environ, "wsgi.input": io.BytesIO(body),
               "CONTENT_LENGTH": str(len(body))}
    # Buffered: one JSON answer, read whole before Flask's response hooks run.
    return Response.from_app(bridge(), environ, buffered=True)


def bridge():
    """The app's MCP transport, made on the first MCP request (the SDK takes most of a
    second to import: a server nobody asks over MCP never pays for it)."""
    app = current_app
    with _creating:
        if EXTENSION not in app.extensions:
            from ..mcp.http import McpHttpBridge
            from ..mcp.server import build_server

            services = current_services()
            app.extensions[EXTENSION] = McpHttpBridge(
                functools.partial(build_server, services),
                max_request_bytes=services.settings["max_request_bytes"])
        return app.extensions[EXTENSION]
