import subprocess
import sys
from pathlib import Path

import pytest

from lumara_web.config import SETTINGS, build_arg_parser, load_settings, settings_from_args
from lumara_web.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_defaults_use_the_user_data_dir_and_loopback(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    settings = load_settings(environ={})
    assert settings["data_dir"] == tmp_path / "xdg" / "lumara"
    assert settings["db_path"] == tmp_path / "xdg" / "lumara" / "lumara.db"
    assert settings["host"] == "127.0.0.1"
    assert settings["port"] == 5000
    assert (settings["search_k"], settings["search_threshold"]) == (10, 0.3)
    assert (settings["duplicate_threshold"], settings["contradiction_threshold"]) == (0.85, 0.70)


def test_environment_then_overrides_take_precedence(tmp_path):
    environ = {"LUMARA_HOME": str(tmp_path / "env"), "LUMARA_PORT": "6001",
               "LUMARA_SEARCH_THRESHOLD": "0.5"}
    settings = load_settings({"port": "7002"}, environ=environ)
    assert settings["data_dir"] == tmp_path / "env"
    assert settings["port"] == 7002  # an override (CLI flag) beats the environment
    assert settings["search_threshold"] == 0.5


@pytest.mark.parametrize("overrides, fragment", [
    ({"prot": 1}, "Unknown setting"),
    ({"port": "http"}, "--port='http' is not valid for port"),
    ({"search_threshold": "1.5"}, "not a cosine similarity"),
    ({"duplicate_threshold": 0.5, "contradiction_threshold": 0.7}, "must not be below"),
])
def test_bad_settings_say_what_is_wrong(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_settings(overrides, environ={})


def test_bad_environment_value_names_the_variable():
    with pytest.raises(ConfigError, match="LUMARA_MAX_TAGS='many'"):
        load_settings(environ={"LUMARA_MAX_TAGS": "many"})


def test_every_setting_is_a_flag_with_help():
    help_text = build_arg_parser().format_help()
    for setting in SETTINGS:
        assert setting.flag in help_text
        assert setting.env_var in help_text
    assert settings_from_args(["--data-dir", "/x", "--port", "5001"]) == {
        "data_dir": "/x", "port": "5001"}


def test_app_py_help_lists_the_flags():
    result = subprocess.run([sys.executable, "app.py", "--help"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for flag in ("--data-dir", "--port", "--host", "--embedding-model", "--model"):
        assert flag in result.stdout
