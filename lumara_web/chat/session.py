"""One chat connection: frames in, events out. Plain Python, so the protocol is tested
with a list-backed fake socket; web/chat_socket.py only plugs a real websocket into it.

Turns run one at a time on the session's own thread, so the connection keeps reading
frames while an answer streams: a "stop" frame is seen at once, and messages sent
meanwhile wait their turn (up to `max_pending`).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from typing import Any, Callable

from ..errors import LumaraError
from .service import ChatService, TurnRequest

log = logging.getLogger(__name__)

_CLOSE = object()


class ChatSession:
    def __init__(self, chat: ChatService, *, connect_db: Callable[[], Any],
                 send: Callable[[dict], None], max_pending: int = 4):
        self.chat = chat
        self.connect_db = connect_db
        self._send = send
        self._send_lock = threading.Lock()
        self.max_pending = max_pending
        self._pending: queue.Queue = queue.Queue()
        self._stop = threading.Event()  # the running turn's stop signal
        self._closed = threading.Event()
        self._worker = threading.Thread(target=self._run_turns, name="chat-session",
                                        daemon=True)
        self._worker.start()

    # -- frames from the client -----------------------------------------------------------
    def handle(self, raw: str | bytes) -> None:
        """React to one frame; bad frames get an error event and change nothing."""
        try:
            frame = self._parse(raw)
            kind = frame.get("type")
            if kind == "chat":
                self._enqueue(self.chat.parse_request(frame))
            elif kind == "stop":
                self._stop.set()
            else:
                raise LumaraError(f"Unknown message type {str(kind)[:40]!r}; send 'chat' or "
                                  "'stop'.", code="unknown_type", status=400)
        except LumaraError as error:
            self.send({"type": "error", "code": error.code, "message": error.message})

    def close(self) -> None:
        """The client went away: stop the running turn now, drop what waits."""
        self._closed.set()
        self._stop.set()
        self._pending.put(_CLOSE)

    def join(self, timeout: float | None = None) -> None:
        self._worker.join(timeout)

    @staticmethod
    def _parse(raw: str | bytes) -> dict:
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            frame = json.loads(text)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise LumaraError("The message is not valid JSON.", code="invalid_json",
                              status=400) from None
        if not isinstance(frame, dict):
            raise LumaraError("Send a JSON object such as {\"type\": \"chat\", \"content\": "
                              "\"...\"}.", code="invalid_frame", status=400)
        return frame

    def _enqueue(self, request: TurnRequest) -> None:
        if self._pending.qsize() >= self.max_pending:
            raise LumaraError(f"{self.max_pending} messages are already waiting on this "
                              "connection; wait for an answer first.", code="busy", status=429)
        self._pending.put(request)

    # -- events to the client -------------------------------------------------------------
    def send(self, event: dict) -> None:
        if self._closed.is_set():
            return
        try:
            with self._send_lock:
                self._send(event)
        except Exception:  # the socket is gone: stop work nobody will read
            log.info("chat client went away; stopping its turn")
            self.close()

    def _run_turns(self) -> None:
        while (request := self._pending.get()) is not _CLOSE:
            # The turn's stop signal before the check: a close() racing with this either
            # sets the new signal or is seen by the check (close sets _closed first).
            self._stop = threading.Event()
            if self._closed.is_set():
                return
            conn = None
            conversation_id = request.conversation_id
            try:
                conn = self.connect_db()
                for event in self.chat.turn(conn, request, self._stop):
                    conversation_id = event.get("conversation_id", conversation_id)
                    self.send(event)
            except LumaraError as error:
                self.send({"type": "error", "code": error.code, "message": error.message})
            except Exception:  # a bug or a broken database: report it, keep the session
                log.exception("chat turn failed")
                self.send({"type": "error", "code": "internal_error",
                           "message": "Something went wrong on the server; nothing you "
                                      "said before was lost."})
            finally:
                if conn is not None:
                    conn.close()
            # Always last: after it no event of this message follows (extraction included),
            # so a client knows when the turn is over.
            self.send({"type": "turn_end", "conversation_id": conversation_id})
