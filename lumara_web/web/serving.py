"""The HTTP server a person starts: werkzeug's threaded server, quiet and without secrets
in its log lines."""

from __future__ import annotations

import re

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

_TOKEN_PARAMETER = re.compile(r"([?&]token=)[^&\s#'\"]*", re.IGNORECASE)


def http_server(app: Flask, host: str, port: int) -> BaseWSGIServer:
    """Bound and listening; serve_forever() serves. Threaded: a slow request (a model call)
    never holds up the others. Not app.run: its banner calls this a development server,
    which a person starting their own local app needs no warning about."""
    return make_server(host, port, app, threaded=True, request_handler=QuietRequestHandler)


class QuietRequestHandler(WSGIRequestHandler):
    """werkzeug's handler, with the access token cut out of every line it logs (request
    lines are logged at level info: --log-level info; errors quote the request line)."""

    def log(self, type: str, message: str, *args) -> None:
        super().log(type, "%s", redact_token(message % args if args else message))


def redact_token(text: str) -> str:
    return _TOKEN_PARAMETER.sub(r"\1[redacted]", text)
