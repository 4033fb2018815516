"""The MCP server's Streamable HTTP transport as a WSGI app, for the web server to mount at
/mcp (web/mcp.py) behind the same host, origin and token checks as every other route.

The SDK's transport is ASGI: it runs on an asyncio loop of its own, on one daemon thread,
and a2wsgi hands each WSGI request to that loop. Stateless with JSON responses: every POST
is one self-contained exchange answered with one JSON body, so no stream outlives its
request and no session state lives between them. The session manager's run() (the task
group every request is served in) is entered once, on the first request, and left when the
bridge closes."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Callable, Iterable

from a2wsgi import ASGIMiddleware
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

log = logging.getLogger(__name__)

# Seconds to wait for the loop to enter (or leave) the session manager: far above the
# milliseconds it takes, a hang detector only.
LOOP_WAIT_SECONDS = 30

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]


class McpHttpBridge:
    """Built with a factory of the server, which is only called (and the SDK's transport
    only started) when the first MCP request comes: a web server nobody asks over MCP
    never pays for it."""

    def __init__(self, build: Callable[[], MCPServer], *, max_request_bytes: int):
        self._build = build
        self._max_request_bytes = max_request_bytes
        self._lock = threading.Lock()
        self._app: WSGIApp | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        return self._started()(environ, start_response)

    def _started(self) -> WSGIApp:
        with self._lock:
            if self._app is None:
                self._app = self._start()
            return self._app

    def _start(self) -> WSGIApp:
        server = self._build()
        # Sets up server.session_manager; requests go to it directly (no Starlette routing:
        # the web server has routed them).
        server.streamable_http_app(
            stateless_http=True, json_response=True,
            # The web server has checked Host and Origin already, against its own policy
            # (--allowed-hosts included); the SDK's check knows only the loopback names.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
            max_request_body_size=self._max_request_bytes)
        manager = server.session_manager
        loop = asyncio.new_event_loop()
        entered = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            self._stop = asyncio.Event()
            try:
                async with manager.run():
                    entered.set()
                    await self._stop.wait()
            except BaseException as error:  # handed to the request that started us
                failure.append(error)
                entered.set()
                raise

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(serve())
            except BaseException:
                # Said here too: a failure after start-up reaches no request (later ones
                # get a 500, as the loop is gone).
                log.exception("the MCP transport stopped")
            finally:
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="mcp-http", daemon=True)
        self._thread.start()
        if not entered.wait(LOOP_WAIT_SECONDS) or failure:
            raise RuntimeError("the MCP transport did not start") from (failure or [None])[0]
        return ASGIMiddleware(manager.handle_request, loop=loop)

    def close(self) -> None:
        """Leave the session manager and end the loop's thread (no-op if never started)."""
        with self._lock:
            loop, thread, stop = self._loop, self._thread, self._stop
            self._app = self._loop = self._thread = self._stop = None
        if loop is None or thread is None or stop is None:
            return
        loop.call_soon_threadsafe(stop.set)
        thread.join(LOOP_WAIT_SECONDS)
