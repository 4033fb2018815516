"""Command-line start-up: flags → settings → app → HTTP server on the loopback."""

from __future__ import annotations

import logging
import sys
import threading
import time
import webbrowser

from . import create_app, lexicon
from .access import TOKEN_FILE, WILDCARD_HOSTS, AccessPolicy
from .config import load_settings, settings_from_args
from .errors import LumaraError
from .inference.heap import limit_heap_growth, trim_periodically
from .observability.perf import process_started_at
from .services import Services
from .storage.server_lock import hold_while_serving
from .web.serving import http_server


def main(argv: list[str] | None = None) -> None:
    overrides = settings_from_args(argv)
    try:
        level = load_settings(overrides)["log_level"]
    except LumaraError as error:
        sys.exit(f"lumara: {error.message}")
    logging.basicConfig(level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Set, not inherited: werkzeug turns its own logger to info when it finds no level.
    logging.getLogger("werkzeug").setLevel(level.upper())
    limit_heap_growth()  # before the model and request threads exist
    try:
        app = create_app(overrides)
    except LumaraError as error:
        sys.exit(f"lumara: {error.message}")
    services = app.extensions["lumara"]
    settings = services.settings
    serving = hold_while_serving(settings["data_dir"])  # a CLI restore waits for us to end
    try:
        server = http_server(app, settings["host"], settings["port"])
    except OSError as error:
        sys.exit(f"lumara: cannot listen on {settings['host']}:{settings['port']}: "
                 f"{error.strerror or error}")
    services.monitor.record(
        "startup.http_ms", (time.time() - process_started_at()) * 1000)
    print(f"Lumara is ready: open {browser_address(settings, services.access, with_token=False)}"
          f" (data in {settings['data_dir']})", flush=True)
    print_access_address(services.access, settings)
    announce_models(services, open_address=browser_address(settings, services.access)
                    if settings["open"] else None)
    trim_periodically(threading.Event(), also=(lexicon.release_pages,))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("Lumara stopped.", flush=True)
    finally:
        serving.close()


def announce_models(services: Services, open_address: str | None) -> None:
    """One line once both models are ready (so the first question is answered at once),
    or why one failed; with --open, then open the page, from a daemon thread."""

    def wait_then_say() -> None:
        loads = (services.embeddings.model, services.engine.model)
        for load in loads:
            load.settle(timeout=600)
        failed = [load for load in loads if load.state != "ready"]
        if failed:
            print("Lumara could not load a model: see the page for why.", flush=True)
            return
        seconds = time.time() - process_started_at()
        print(f"Models ready after {seconds:.1f} s: ask away.", flush=True)
        if open_address:
            webbrowser.open(open_address)

    threading.Thread(target=wait_then_say, name="lumara-models-ready", daemon=True).start()


def browser_address(settings: dict, policy: AccessPolicy, with_token: bool = True) -> str:
    """The address a browser on this machine opens (with the token when one is needed)."""
    host = settings["host"]
    # A wildcard is not an address a browser can open; from another machine use this
    # machine's address instead of 127.0.0.1.
    shown = "127.0.0.1" if host in WILDCARD_HOSTS else f"[{host}]" if ":" in host else host
    token = f"?token={policy.token}" if policy.token_required and with_token else ""
    return f"http://{shown}:{settings['port']}/{token}"


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
