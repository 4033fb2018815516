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

    def make_environ(self) -> dict:
        """The environ with the Host header the client sent. werkzeug replaces it with the
        host of an absolute-form request line ("GET http://127.0.0.1/ HTTP/1.1"), as a proxy
        should; Lumara is no proxy, and the host check must see the header a page's request
        carries. Without a Host header, werkzeug would fill in the server's own address."""
        environ = super().make_environ()
        sent = self.headers.get("Host")
        if sent is None:
            environ.pop("HTTP_HOST", None)
        else:
            environ["HTTP_HOST"] = sent
        return environ

    def log(self, type: str, message: str, *args) -> None:
        super().log(type, "%s", redact_token(message % args if args else message))


def redact_token(text: str) -> str:
    return _TOKEN_PARAMETER.sub(r"\1[redacted]", text)
