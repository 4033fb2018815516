"""`pip install .` gives a working product: the package carries its templates, static files and
recorded benchmark figures, installs a `lumara` command, and leaves the benchmark and the tests
behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # A copy, because setuptools writes build/ and *.egg-info into the source folder.
    source = out / "source"
    shutil.copytree(PROJECT_ROOT / "lumara_web", source / "lumara_web",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    # No build isolation and no dependencies: the venv's setuptools builds it, offline.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(out), str(source)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (built,) = out.glob("lumara-*.whl")
    return built


def test_the_wheel_holds_the_product_and_only_the_product(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in ("lumara_web/templates/index.html", "lumara_web/static/app.css",
                     "lumara_web/static/js/ui.js", "lumara_web/observability/benchmarks.json",
                     "lumara_web/inference/onnx_export.py", "lumara_web/web/__init__.py"):
        assert expected in names
    assert not [name for name in names if name.startswith(("lumara_bench/", "tests/"))]
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "lumara = lumara_web.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_installed_package_serves_its_page_from_anywhere(wheel, tmp_path):
    """Unpacked away from the checkout (no templates/ or static/ beside it), the app still
    renders its page and serves its scripts."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    program = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from tests.fakes import FakeEmbedder, FakeEngine;"
        "import lumara_web; assert lumara_web.__file__.startswith(sys.argv[2]), lumara_web.__file__;"
        "app = lumara_web.create_app({'data_dir': sys.argv[3], 'embedder': FakeEmbedder(),"
        " 'engine': FakeEngine()});"
        "client = app.test_client();"
        "page = client.get('/'); script = client.get('/static/js/ui.js');"
        "print(page.status_code, script.status_code, b'<html' in page.data)")
    # The checkout's tests package supplies the fakes; the installed copy supplies the app.
    env = {**os.environ, "PYTHONPATH": str(site) + os.pathsep + str(PROJECT_ROOT)}
    result = subprocess.run([sys.executable, "-c", program, str(site), str(site),
                             str(tmp_path / "data")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-3:] == ["200", "200", "True"]
