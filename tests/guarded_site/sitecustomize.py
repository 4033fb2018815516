"""Loaded by every Python the test suite starts (tests/conftest.py prepends this folder to
PYTHONPATH): installs tests/network_guard.py before any other code runs."""

import importlib.util
import sys
from pathlib import Path


def _install_network_guard() -> None:
    path = Path(__file__).resolve().parent.parent / "network_guard.py"
    spec = importlib.util.spec_from_file_location("lumara_network_guard", path)
    guard = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = guard
    spec.loader.exec_module(guard)
    guard.install()


def _chain_shadowed_sitecustomize() -> None:
    """Run the sitecustomize this one hides (a distribution's, later on sys.path), if any."""
    here = Path(__file__).resolve().parent
    for entry in sys.path:
        candidate = Path(entry or ".").resolve() / "sitecustomize.py"
        if candidate.parent != here and candidate.is_file():
            spec = importlib.util.spec_from_file_location("_shadowed_sitecustomize", candidate)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return


_install_network_guard()
_chain_shadowed_sitecustomize()
