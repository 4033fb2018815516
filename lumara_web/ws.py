"""The chat websocket, /ws/chat: a thin adapter from flask-sock to ChatSession."""

from __future__ import annotations

import json

from flask import Flask
from flask_sock import ConnectionClosed, Sock

from . import db
from .chat_session import ChatSession
from .web_context import lumara

sock = Sock()

# Largest frame accepted, in bytes. An 8,000-character message is at most ~48 KB as JSON
# (\uXXXX escapes); larger frames close the connection (1009) rather than fill memory.
MAX_FRAME_BYTES = 256 * 1024


def init_app(app: Flask) -> None:
    app.config.setdefault("SOCK_SERVER_OPTIONS", {"max_message_size": MAX_FRAME_BYTES,
                                                  "ping_interval": 25})
    sock.init_app(app)


@sock.route("/ws/chat")
def chat_socket(ws) -> None:
    services = lumara()
    db_path = services.settings["db_path"]
    session = ChatSession(services.chat, connect_db=lambda: db.connect(db_path),
                          send=lambda event: ws.send(json.dumps(event)))
    try:
        while True:
            session.handle(ws.receive())
    except ConnectionClosed:
        pass
    finally:
        session.close()
