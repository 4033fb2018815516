"""`python -m lumara_web mcp` (or `lumara mcp`): the MCP server over stdin and stdout, the
command an MCP client's config file starts. It opens the data folder the web server uses
(the same flags and LUMARA_* variables) and may run beside it: SQLite (WAL) lets both
write, and each process's vector index catches up from the database's change log before
every search, so each sees what the other added.

stdout carries protocol messages only: logs go to stderr, and while serving the SDK points
file descriptor 1 at stderr too (stray prints, llama.cpp). The embedding model and the
index load once the client has connected; the chat model only when `ask` first needs it,
so the process starts in a second or two."""

from __future__ import annotations

import argparse
import logging
import sys
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from ..config import build_arg_parser, load_settings
from ..errors import LumaraError
from ..services import Services, build_services
from .server import build_server

DESCRIPTION = ("Serve Lumara's memories to an MCP client (Claude Desktop, Cursor, VS Code, …) "
               "over stdin and stdout. Takes the server's flags; those about HTTP are unused.")


def main(argv: list[str] | None = None) -> None:
    overrides = parse_args(argv)
    try:
        settings = load_settings(overrides)
        # Before anything logs (the SDK configures logging only where nobody has): stderr.
        logging.basicConfig(stream=sys.stderr,
                            level=settings.get("log_level", "warning").upper(),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        services = lazy_services(settings)
    except LumaraError as error:
        sys.exit(f"lumara: {error.message}")
    build_server(services, lifespan=lambda _server: loading(services)).run("stdio")


def parse_args(argv: list[str] | None) -> dict[str, Any]:
    """The server's own flags (config.SETTINGS), so a client's config names the data
    folder, the models or a chat server exactly as `python app.py` would."""
    parser: argparse.ArgumentParser = build_arg_parser()
    parser.prog, parser.description = "python -m lumara_web mcp", DESCRIPTION
    args = parser.parse_args(argv)
    return {name: value for name, value in vars(args).items() if value is not None}


def lazy_services(settings: dict, components: dict[str, Any] | None = None) -> Services:
    """The services of a web server that never started its engine: embeddings run on the
    calling threads rather than the engine's (whose worker would load the chat model
    first), and nothing loads until `loading` starts it."""
    services = build_services(settings, components)
    services.embeddings.runner = None
    return services


@asynccontextmanager
async def loading(services: Services) -> AsyncIterator[None]:
    """Around the stdio session: the embedding model and the vector index load in the
    background once the transport owns stdout (a model's loader cannot print into the
    protocol); the first search or add waits for them. Vectors another embedding model made
    are made again, as the web server does at its start."""
    services.reembed.start_if_model_changed()
    services.embeddings.start_loading()
    services.vector_index.start_loading()
    yield
