"""What a person sees in the terminal when they start Lumara: one line when the page is ready,
one when the models are, no development-server warning and no line per request; with
--log-level info the requests are logged, never with the access token."""

from __future__ import annotations

import time
import urllib.request

import pytest

from lumara_web.web.serving import redact_token

from .live_server import WAIT_TIMEOUT, AppProcess

pytestmark = pytest.mark.live_server


def output_once(process: AppProcess, text: str) -> str:
    """The server's output once it holds `text` (a line the server prints itself)."""
    deadline = time.monotonic() + WAIT_TIMEOUT
    while text not in (output := process.output(100_000)):
        assert process.process.poll() is None, f"the server exited:\n{output}"
        assert time.monotonic() < deadline, f"never printed {text!r}:\n{output}"
        time.sleep(0.05)
    return output


def test_a_default_launch_prints_two_lines_and_no_request(tmp_path, embedding_cache_dir):
    server = AppProcess(tmp_path / "lumara", models_dir=embedding_cache_dir)
    try:
        server.wait_until("ok")
        for path in ("/", "/health", "/api/memories", "/?token=not-a-secret"):
            visit(server, path)
        output = output_once(server, "Models ready after")
    finally:
        server.stop()
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines[0] == (f"Lumara is ready: open http://127.0.0.1:{server.port}/ "
                        f"(data in {tmp_path / 'lumara'})")
    assert lines[1].startswith("Models ready after ") and lines[1].endswith(" s: ask away.")
    assert "development server" not in output and "Serving Flask app" not in output
    assert "GET " not in output and "not-a-secret" not in output
    assert lines[2:] in ([], ["Lumara stopped."]), lines


def test_request_lines_at_log_level_info_hide_the_token(tmp_path, embedding_cache_dir):
    server = AppProcess(tmp_path / "lumara", "--log-level", "info",
                        models_dir=embedding_cache_dir)
    try:
        server.wait_until("ok")
        visit(server, "/?token=s3cret-value&x=1")
        output = output_once(server, "token=[redacted]")
    finally:
        server.stop()
    assert '"GET /?token=[redacted]&x=1 HTTP/1.1" 200' in output
    assert "s3cret-value" not in output


def visit(server: AppProcess, path: str) -> None:
    with urllib.request.urlopen(server.base + path, timeout=60) as response:
        assert response.status == 200


@pytest.mark.parametrize("line, shown", [
    ("GET /?token=abc HTTP/1.1", "GET /?token=[redacted] HTTP/1.1"),
    ("GET /chat?x=1&token=abc&y=2 HTTP/1.1", "GET /chat?x=1&token=[redacted]&y=2 HTTP/1.1"),
    ("GET /health HTTP/1.1", "GET /health HTTP/1.1"),
    ("GET /?notoken=abc HTTP/1.1", "GET /?notoken=abc HTTP/1.1"),
])
def test_the_token_is_cut_out_of_a_request_line(line, shown):
    assert redact_token(line) == shown
