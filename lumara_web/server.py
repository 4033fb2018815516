"""Command-line start-up: flags → settings → app → HTTP server on the loopback."""

from __future__ import annotations

import logging
import sys
import time

from . import create_app
from .config import settings_from_args
from .errors import LumaraError
from .perf import process_started_at
from .security import TOKEN_FILE, WILDCARD_HOSTS, AccessPolicy


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = settings_from_args(argv)
    try:
        app = create_app(overrides)
    except LumaraError as error:
        sys.exit(f"lumara: {error.message}")
    settings = app.extensions["lumara"].settings
    print(f"Lumara is starting on http://{settings['host']}:{settings['port']} "
          f"(data in {settings['data_dir']})", flush=True)
    print_access_address(app.extensions["lumara_security"], settings)
    # Start-up ends here: the socket is bound in app.run, within a millisecond of this.
    app.extensions["lumara"].monitor.record(
        "startup.http_ms", (time.time() - process_started_at()) * 1000)
    # threaded: a slow request (a model call) never holds up the others.
    app.run(host=settings["host"], port=settings["port"], threaded=True, use_reloader=False)


def print_access_address(policy: AccessPolicy, settings: dict) -> None:
    """Off the loopback every request needs the token: print the address that carries it,
    once when the token is made (or again with --show-token yes), never on other starts."""
    if not policy.token_required:
        return
    if policy.token_is_new or settings["show_token"]:
        host = settings["host"]
        # A wildcard is not an address a browser can open; from another machine use this
        # machine's address instead of 127.0.0.1.
        shown = "127.0.0.1" if host in WILDCARD_HOSTS else f"[{host}]" if ":" in host else host
        print(f"Access token required: open http://{shown}:{settings['port']}/?token="
              f"{policy.token}", flush=True)
    else:
        print(f"Access token required: it is in {settings['data_dir'] / TOKEN_FILE} "
              f"(--show-token yes prints the address again).", flush=True)
