"""Command-line start-up: flags → settings → app → HTTP server on the loopback."""

from __future__ import annotations

import logging
import sys
import time

from . import create_app
from .config import settings_from_args
from .errors import LumaraError
from .perf import process_started_at


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
    # Start-up ends here: the socket is bound in app.run, within a millisecond of this.
    app.extensions["lumara"].monitor.record(
        "startup.http_ms", (time.time() - process_started_at()) * 1000)
    # threaded: a slow request (a model call) never holds up the others.
    app.run(host=settings["host"], port=settings["port"], threaded=True, use_reloader=False)
