"""Lumara: a personal memory assistant that runs entirely on this machine.

The app factory: settings → services (built outside Flask) → web layer → background loads.
docs/ARCHITECTURE.md shows the rooms and what each may import.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from . import web
from .config import load_settings
from .services import COMPONENT_KEYS, build_services
from .version import __version__

__all__ = ["create_app", "__version__"]


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Wire the app. `test_config` holds setting overrides (see config.SETTINGS) and may
    inject components: {"embedder": FakeEmbedder()} or {"engine": FakeEngine()} replace the
    real models."""
    overrides = dict(test_config or {})
    components = {key: overrides.pop(key) for key in COMPONENT_KEYS if key in overrides}
    services = build_services(load_settings(overrides), components)
    app = Flask(__name__)
    web.init_app(app, services)
    services.start()
    return app
