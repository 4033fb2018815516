"""Command-line start-up: flags → settings → app → HTTP server on the loopback."""

from __future__ import annotations

import logging
import sys
import threading
import time
import webbrowser

from . import create_app
from .access import TOKEN_FILE, WILDCARD_HOSTS, AccessPolicy
from .config import settings_from_args
from .errors import LumaraError
from .observability.perf import process_started_at
from .services import Services


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = settings_from_args(argv)
    try:
        app = create_app(overrides)
    except LumaraError as error:
        sys.exit(f"lumara: {error.message}")
    services = app.extensions["lumara"]
    settings = services.settings
    print(f"Lumara is starting on http://{settings['host']}:{settings['port']} "
          f"(data in {settings['data_dir']})", flush=True)
    print_access_address(services.access, settings)
    if settings["open"]:
        open_when_ready(services, browser_address(settings, services.access))
    # Start-up ends here: the socket is bound in app.run, within a millisecond of this.
    services.monitor.record(
        "startup.http_ms", (time.time() - process_started_at()) * 1000)
    # threaded: a slow request (a model call) never holds up the others.
    app.run(host=settings["host"], port=settings["port"], threaded=True, use_reloader=False)


def browser_address(settings: dict, policy: AccessPolicy) -> str:
    """The address a browser on this machine opens (with the token when one is needed)."""
    host = settings["host"]
    # A wildcard is not an address a browser can open; from another machine use this
    # machine's address instead of 127.0.0.1.
    shown = "127.0.0.1" if host in WILDCARD_HOSTS else f"[{host}]" if ":" in host else host
    token = f"?token={policy.token}" if policy.token_required else ""
    return f"http://{shown}:{settings['port']}/{token}"


def open_when_ready(services: Services, address: str) -> None:
    """--open: once both models are ready (so the first question is answered at once), open
    the page in the default browser, from a daemon thread."""

    def wait_then_open() -> None:
        for load in (services.embeddings.model, services.engine.model):
            load.settle(timeout=600)
        webbrowser.open(address)

    threading.Thread(target=wait_then_open, name="lumara-open", daemon=True).start()


def print_access_address(policy: AccessPolicy, settings: dict) -> None:
    """Off the loopback every request needs the token: print the address that carries it,
    once when the token is made (or again with --show-token yes), never on other starts."""
    if not policy.token_required:
        return
    if policy.token_is_new or settings["show_token"]:
        print(f"Access token required: open {browser_address(settings, policy)}", flush=True)
    else:
        print(f"Access token required: it is in {settings['data_dir'] / TOKEN_FILE} "
              f"(--show-token yes prints the address again).", flush=True)
