"""`python -m lumara_web` commands and the --open flag."""

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lumara_web import cli, create_app, server
from lumara_web.config import load_settings, settings_from_args
from lumara_web.memory.validation import NewMemory

from .fakes import FakeEmbedder, FakeEngine

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_help_lists_the_commands():
    result = subprocess.run([sys.executable, "-m", "lumara_web", "--help"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in cli.COMMANDS:
        assert f"  {command} " in result.stdout


@pytest.fixture
def filled(make_app):
    """The data folder of an app that holds four memories."""
    services = make_app().extensions["lumara"]
    from lumara_web.storage import db

    conn = db.connect(services.settings["db_path"])
    try:
        for content, kind in [("My sister lives in Lisbon.", "knowledge"),
                              ("I steep cold brew for 16 hours.", "method"),
                              ("We hiked the Douro valley in May.", "experience"),
                              ("The car needs new tyres.", "knowledge")]:
            services.memories.add(conn, NewMemory(content, kind, [], {}))
    finally:
        conn.close()
    return services.settings["data_dir"]


def test_stats_counts_what_the_database_holds(filled, capsys):
    cli.main(["stats", "--data-dir", str(filled), "--json"])
    figures = json.loads(capsys.readouterr().out)
    assert figures["memories"] == figures["vectors"] == 4
    assert figures["memories_by_type"] == {"experience": 1, "knowledge": 2, "method": 1}
    assert figures["conversations"] == figures["pending_suggestions"] == 0
    cli.main(["stats", "--data-dir", str(filled)])
    assert "memories               4 (1 experience, 2 knowledge, 1 method)" in \
        capsys.readouterr().out


def test_stats_without_a_database_says_where_it_looked(tmp_path):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["stats", "--data-dir", str(tmp_path / "none")])
    assert str(tmp_path / "none" / "lumara.db") in str(exit_.value)
    assert not (tmp_path / "none").exists()  # looking created nothing


def test_open_is_a_switch_and_a_setting():
    assert load_settings(settings_from_args(["--open"]), environ={})["open"] is True
    assert load_settings(settings_from_args(["--open", "no"]), environ={})["open"] is False
    assert load_settings(environ={"LUMARA_OPEN": "yes"})["open"] is True
    assert load_settings(environ={})["open"] is False


def test_open_waits_for_the_models_then_says_so_and_opens_the_address(tmp_path, monkeypatch,
                                                                     capsys):
    opened = threading.Event()
    addresses = []
    monkeypatch.setattr(server.webbrowser, "open",
                        lambda address: (addresses.append(address), opened.set()))
    app = create_app({"data_dir": str(tmp_path), "embedder": FakeEmbedder(),
                      "engine": FakeEngine(), "port": 5123})
    services = app.extensions["lumara"]
    policy = app.extensions["lumara"].access
    server.announce_models(services, server.browser_address(services.settings, policy))
    assert opened.wait(10)
    assert services.engine.model.state == "ready"
    assert addresses == ["http://127.0.0.1:5123/"]
    assert capsys.readouterr().out.startswith("Models ready after ")


def test_the_browser_address_carries_the_token_off_the_loopback(make_app):
    app = make_app(host="0.0.0.0", port=5124)
    policy = app.extensions["lumara"].access
    address = server.browser_address(app.extensions["lumara"].settings, policy)
    assert address == f"http://127.0.0.1:5124/?token={policy.token}"


def test_export_then_import_into_a_new_folder_restores_the_memories_once(
        filled, tmp_path, embedding_cache_dir, capsys):
    backup = tmp_path / "backup.json"
    cli.main(["export", "--data-dir", str(filled), "--output", str(backup)])
    assert json.loads(backup.read_text())["format"] == "lumara-export"
    restored = tmp_path / "restored"
    restored.mkdir()
    (restored / "models").symlink_to(embedding_cache_dir)  # the session's one ONNX export
    capsys.readouterr()
    cli.main(["import", "--data-dir", str(restored), str(backup)])
    result = json.loads(capsys.readouterr().out)
    assert result["imported"] == 4 and result["reembedded"] is True
    cli.main(["import", "--data-dir", str(restored), str(backup)])
    again = json.loads(capsys.readouterr().out)
    assert again["imported"] == 0 and len(again["skipped_duplicates"]) == 4
    cli.main(["stats", "--data-dir", str(restored), "--json"])
    assert json.loads(capsys.readouterr().out)["vectors"] == 4


def test_a_bad_file_imports_nothing_and_says_why(filled, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else", "memories": []}')
    with pytest.raises(SystemExit) as exit_:
        cli.main(["import", "--data-dir", str(filled), str(bad)])
    assert "nothing was imported" in str(exit_.value)
    bad.write_text("not json")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["import", "--data-dir", str(filled), str(bad)])
    assert "cannot read" in str(exit_.value)
