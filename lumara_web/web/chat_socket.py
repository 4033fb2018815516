"""The chat websocket, /ws/chat: a thin adapter from flask-sock to ChatSession."""

from __future__ import annotations

import json
import socket

from flask import Flask
from flask_sock import ConnectionClosed, Sock

from ..chat.session import ChatSession
from .context import current_services

sock = Sock()

# Largest frame accepted, in bytes. An 8,000-character message is at most ~48 KB as JSON
# (\uXXXX escapes); larger frames close the connection (1009) rather than fill memory.
MAX_FRAME_BYTES = 256 * 1024
MESSAGE_TOO_BIG = 1009  # the websocket close code for it (RFC 6455)
# How long a finished connection waits for its websocket thread to send the last close
# frame (or to read the client's answer to ours): instant unless the client is stuck.
CLOSE_WAIT_SECONDS = 2
# How often a waiting receive looks whether the connection ended behind its back (see
# receive_frame): a wake-up a second costs nothing next to a thread that never ends.
RECEIVE_CHECK_SECONDS = 1.0


def init_app(app: Flask) -> None:
    app.config.setdefault("SOCK_SERVER_OPTIONS", {"max_message_size": MAX_FRAME_BYTES,
                                                  "ping_interval": 25})
    sock.init_app(app)


@sock.route("/ws/chat")
def chat_socket(ws) -> None:
    services = current_services()
    session = ChatSession(services.chat, connect_db=services.connect,
                          send=lambda event: ws.send(json.dumps(event)))
    try:
        while (frame := receive_frame(ws)) is not None:
            if too_big(frame):
                ws.close(MESSAGE_TOO_BIG, "Message is too big")
                break
            session.handle(frame)
    except ConnectionClosed:
        pass
    finally:
        session.close()
        end_cleanly(ws)


def receive_frame(ws) -> str | bytes | None:
    """The next frame, or None once the connection is closed. simple_websocket's own
    receive() can sleep forever: when it closes a connection itself (a frame over the size
    limit, a protocol error) it wakes the receiver a moment before marking the connection
    closed, so the receiver may look, see it still open, and wait again for a wake-up that
    never comes — one thread and one socket lost per such frame. Waiting in slices and
    checking the flag each time ends that."""
    while True:
        frame = ws.receive(timeout=RECEIVE_CHECK_SECONDS)
        if frame is not None:
            return frame
        if not ws.connected:
            return None


def too_big(frame: str | bytes) -> bool:
    """simple_websocket's max_message_size counts a text frame in characters, so up to 1 MB
    of UTF-8 got through; the limit is in bytes, as documented."""
    if isinstance(frame, bytes) or len(frame) <= MAX_FRAME_BYTES // 4:
        return False  # binary frames are counted in bytes already; 4 bytes per character
    return len(frame.encode("utf-8")) > MAX_FRAME_BYTES


def end_cleanly(ws) -> None:
    """Let the close frame be the last thing on the wire. After this handler flask-sock
    returns an HTTP response that werkzeug's server writes onto the socket ("HTTP/1.1 200
    OK" after the websocket's bytes), and when the client (or a protocol error) ended the
    connection, that write raced the websocket thread's close frame and could go first:
    the client then read HTTP as a broken frame. Wait for the thread, then shut the
    socket, so the late response has nowhere to go (werkzeug drops it silently)."""
    ws.thread.join(CLOSE_WAIT_SECONDS)
    try:
        ws.sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already gone
        pass
