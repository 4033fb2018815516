"""The rooms of lumara_web and what each may import (docs/ARCHITECTURE.md), checked on the
source: a new import across a wall fails here instead of slowly blurring the layout."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lumara_web"

# Modules at the top of the package that every room may use.
BASE = {"errors", "config", "version", "access", "text", "lexicon"}
# Each room → the rooms it may import (besides itself and BASE). Lower rooms never import
# higher ones; imports needed only for type hints (under TYPE_CHECKING) do not count.
MAY_IMPORT = {
    "storage": set(),
    "observability": set(),
    "inference": {"storage", "observability"},
    "search": {"storage", "inference", "observability"},
    "memory": {"search", "inference", "storage", "observability"},
    "chat": {"memory", "search", "inference", "storage", "observability"},
    "services": {"chat", "memory", "search", "inference", "storage", "observability"},
    # The MCP server: tools over the services, for MCP clients (over stdio, or HTTP via web).
    "mcp": {"services", "chat", "memory", "search", "inference", "observability"},
    # The web layer calls services; it never reaches a store or the database itself.
    "web": {"services", "mcp", "chat", "memory", "search", "inference", "observability"},
}
FLASK_PACKAGES = {"flask", "flask_sock", "werkzeug", "simple_websocket"}
# Where Flask may appear: the web room and the app factory that wires it.
FLASK_ALLOWED = {"web", "__init__"}


def room_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import outside `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text(), filename=str(path))
    type_only = {id(child) for node in ast.walk(tree) if isinstance(node, ast.If)
                 and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
                 for statement in node.body for child in ast.walk(statement)}
    package = ["lumara_web", *path.relative_to(PACKAGE).with_suffix("").parts]
    package = package[:-1]  # a module's own package (an __init__'s package is its folder)
    found = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                base = ".".join(package[:len(package) - node.level + 1]
                                + ([node.module] if node.module else []))
            if node.level and not node.module:  # from . import a, b: each names a module
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, base))
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_imports_only_what_its_room_may(path):
    room = room_of(path)
    wrong = []
    for line, module in imports_of(path):
        parts = module.split(".")
        if parts[0] == "lumara_bench":
            wrong.append(f"line {line}: {module} (the product never imports the benchmark)")
        elif parts[0] in FLASK_PACKAGES and room not in FLASK_ALLOWED:
            wrong.append(f"line {line}: {module} (Flask stays in web/)")
        elif parts[0] == "lumara_web" and len(parts) > 1 and room in MAY_IMPORT:
            target = parts[1]
            if target != room and target not in BASE and target not in MAY_IMPORT[room]:
                wrong.append(f"line {line}: {module} ({room}/ may not import {target})")
        elif parts[0] == "lumara_web" and room in BASE:
            if len(parts) < 2 or parts[1] not in BASE:
                wrong.append(f"line {line}: {module} ({room}.py may import only {BASE})")
    assert not wrong, f"{path.relative_to(PACKAGE)}:\n" + "\n".join(wrong)


def test_every_room_is_known():
    """A new folder under lumara_web/ gets its place in MAY_IMPORT (and in the docs)."""
    rooms = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert rooms <= set(MAY_IMPORT), rooms - set(MAY_IMPORT)


def test_the_package_root_imports_without_a_cycle():
    """Any module can be imported first: the root no longer hands out names to its rooms."""
    import subprocess
    import sys

    for module in ("lumara_web.web.pages", "lumara_web.services", "lumara_web.cli"):
        result = subprocess.run([sys.executable, "-c", f"import {module}"],
                                cwd=PACKAGE.parent, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
