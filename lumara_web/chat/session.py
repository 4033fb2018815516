"""One chat connection: frames in, events out. Plain Python, so the protocol is tested
with a list-backed fake socket; web/chat_socket.py only plugs a real websocket into it.

Turns run one at a time on the session's own thread, so the connection keeps reading
frames while an answer streams: a "stop" frame is seen at once, and messages sent
meanwhile wait their turn (up to `max_pending`). A turn goes on when its page goes away
(reloaded or closed); another page follows it with an "attach" frame (runs.py).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from typing import Any, Callable

from ..errors import LumaraError
from .runs import TurnRun
from .service import ChatService, TurnRequest

log = logging.getLogger(__name__)

_CLOSE = object()


class ChatSession:
    def __init__(self, chat: ChatService, *, connect_db: Callable[[], Any],
                 send: Callable[[dict], None], max_pending: int = 4):
        self.chat = chat
        self.runs = chat.runs  # shared by every page's session
        self._following: TurnRun | None = None  # another page's turn this one attached to
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
                if (following := self._following) is not None:
                    following.stop.set()
            elif kind == "attach":
                self._attach(frame.get("conversation_id"))
            else:
                raise LumaraError(f"Unknown message type {str(kind)[:40]!r}; send 'chat', "
                                  "'stop' or 'attach'.", code="unknown_type", status=400)
        except LumaraError as error:
            self.send({"type": "error", "code": error.code, "message": error.message})

    def close(self) -> None:
        """The client went away: what waits is dropped; the running turn goes on, so its
        answer is kept in the conversation (and a reloaded page can attach to it)."""
        self._closed.set()
        self._pending.put(_CLOSE)

    def _attach(self, conversation_id: Any) -> None:
        """Follow the conversation's running turn from its first event: "attached", then
        its events as they come, "turn_end" last; "attach_none" when none runs."""
        if isinstance(conversation_id, bool) or not isinstance(conversation_id, int) or \
                not 0 < conversation_id < 2**63:
            raise LumaraError("conversation_id must be a conversation's id (a positive whole "
                              "number).", code="invalid_conversation_id", status=400)
        run = self.runs.running(conversation_id)
        if run is None:
            self.send({"type": "attach_none", "conversation_id": conversation_id})
            return
        self._following = run
        threading.Thread(target=self._follow, args=(run,), name="chat-follow",
                         daemon=True).start()

    def _follow(self, run: TurnRun) -> None:
        self.send({"type": "attached", "conversation_id": run.conversation_id})
        for event in run.follow(self._closed.is_set):
            self.send(event)
        if self._following is run:
            self._following = None

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
        except Exception:  # the socket is gone: send nothing more (the turn goes on)
            log.info("chat client went away; its turn goes on")
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
            run = TurnRun(self._stop)

            def stored(conversation: int, message: int) -> None:
                self.runs.started(run, conversation)
                self._emit(run, {"type": "conversation", "conversation_id": conversation,
                                 "message_id": message})

            try:
                conn = self.connect_db()
                for event in self.chat.turn(conn, request, self._stop, stored):
                    conversation_id = event.get("conversation_id", conversation_id)
                    self._emit(run, event)
            except LumaraError as error:
                self._emit(run, {"type": "error", "code": error.code,
                                 "message": error.message})
            except Exception:  # a bug or a broken database: report it, keep the session
                log.exception("chat turn failed")
                self._emit(run, {"type": "error", "code": "internal_error",
                                 "message": "Something went wrong on the server; nothing "
                                            "you said before was lost."})
            finally:
                if conn is not None:
                    conn.close()
            # Always last: after it no event of this message follows (extraction included),
            # so a client knows when the turn is over.
            self._emit(run, {"type": "turn_end", "conversation_id": conversation_id})
            self.runs.ended(run)

    def _emit(self, run: TurnRun, event: dict) -> None:
        run.add(event)  # for a page that attaches later
        self.send(event)
