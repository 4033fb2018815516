"""The Flask side of shared objects: the per-request database connection and the
process-wide services created once by create_app."""

from __future__ import annotations

from typing import Any, Callable

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import LimitedStream

from ..errors import ValidationError
from ..memory import validation
from ..services import Services


def current_services() -> Services:
    return current_app.extensions["lumara"]


def get_db() -> Any:
    """This request's connection, opened on first use and closed when the request ends."""
    if "lumara_db" not in g:
        g.lumara_db = current_services().connect()
    return g.lumara_db


def close_db(_exc: BaseException | None = None) -> None:
    conn = g.pop("lumara_db", None)
    if conn is not None:
        conn.close()


def init_app(app: Flask, services: Services) -> None:
    app.extensions["lumara"] = services
    app.teardown_appcontext(close_db)
    app.before_request(limit_streamed_bodies)
    app.after_request(stop_waiting_for_a_refused_body)


def page_of(items: list, total: int, page: Any, **extra: Any) -> Response:
    """One page of a list (objects with to_dict), as every list endpoint answers: the items,
    the total that matches, and the page's `limit` and `offset`."""
    return jsonify({"items": [item.to_dict() for item in items], "total": total,
                    "limit": page.limit, "offset": page.offset, **extra})


def json_body() -> dict:
    """The request's JSON object, or a 415/400 that says what was wrong."""
    if request.mimetype != "application/json":
        raise ValidationError(
            f"Send JSON with 'Content-Type: application/json' (got "
            f"{request.mimetype or 'no content type'!r}).", code="unsupported_media_type",
            status=415)
    # get_data honours MAX_CONTENT_LENGTH: an oversized body is refused (413), not read whole.
    return validation.parse_json_object(request.get_data(cache=False))


class StreamedBodyLimit(LimitedStream):
    """A body sent without Content-Length (chunked), capped at MAX_CONTENT_LENGTH. Werkzeug's
    own cap stops reading at the limit without looking further, so a 1.2 MB body was read as
    its first megabyte: `{"content": "..."}`, padding, then garbage was saved (201). This
    one looks one byte past the limit and refuses the body (413) if it goes on.

    The limit is the request's max_content_length as it is when the body is read, so a
    route that takes larger bodies (/api/import) only sets its own limit first."""

    def __init__(self, body, limit: Callable[[], int]):
        self._limit_now = limit
        super().__init__(body, 0, is_max=True)
        self.body = body

    @property
    def limit(self) -> int:
        return self._limit_now()

    @limit.setter
    def limit(self, _value: int) -> None:
        pass  # LimitedStream.__init__ sets one; the request's own is read instead

    def readall(self) -> bytes:
        data = super().readall()
        if self.is_exhausted and self.body.read(1):
            raise RequestEntityTooLarge()
        return data


# Seconds the server still reads a refused body (413) before it closes the connection.
REFUSED_BODY_WAIT_SECONDS = 1


def stop_waiting_for_a_refused_body(response: Response) -> Response:
    """After a 413, werkzeug reads and discards the rest of the body so that the client sees
    the answer rather than a reset, in blocking reads of 10 MB: a client that stopped sending
    without closing held the connection and its thread for ever. A short timeout on the
    socket ends that wait."""
    connection = request.environ.get("werkzeug.socket")
    if response.status_code == 413 and connection is not None:
        connection.settimeout(REFUSED_BODY_WAIT_SECONDS)
    return response


def limit_streamed_bodies() -> None:
    """For every endpoint (json_body reads through request.stream); nothing is read here."""
    if (request.content_length is None and request.max_content_length is not None
            and request.environ.get("wsgi.input_terminated")):
        # Bodies are read within their request, where `request` is this one.
        request.stream = StreamedBodyLimit(request.input_stream,
                                           lambda: request.max_content_length)
