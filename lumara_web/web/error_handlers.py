"""Errors as the client expects them: JSON under /api, /v1, /mcp and /health (a stable code
and a message), Flask's own pages elsewhere; an unexpected error says nothing was changed."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from ..errors import LumaraError

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    app.register_error_handler(LumaraError, lumara_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)


def wants_json() -> bool:
    return (request.path in ("/api", "/health", "/v1", "/mcp")
            or request.path.startswith(("/api/", "/v1/")))


def lumara_error(error: LumaraError):
    return jsonify(error.to_dict()), error.status


def http_error(error: HTTPException):
    if not wants_json():
        return error
    code = (error.name or "error").lower().replace(" ", "_")
    response = jsonify({"error": {"code": code, "message": error.description}})
    response.status_code = error.code
    # Keep the exception's own headers (a 405 must say which methods are Allowed),
    # but not its HTML content type.
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers.add(name, value)
    return response


def unexpected_error(error: Exception):
    log.exception("unexpected error on %s %s", request.method, request.path)
    body = {"error": {"code": "internal_error",
                      "message": f"Something went wrong on the server "
                                 f"({type(error).__name__}); nothing was changed."}}
    return jsonify(body), 500
