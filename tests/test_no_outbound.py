"""The network guard (tests/network_guard.py) that keeps the whole suite on this machine:
refuses any address but the loopback, here and in every Python the tests start, while the
app — in-process and as a real `python app.py` — starts and serves with it on.

192.0.2.1 and 2001:db8::1 are documentation addresses (TEST-NET-1, RFC 5737 / 3849): never
routed, so even a guard that failed would send nothing anywhere."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lumara_bench.server import free_port

from . import network_guard
from .helpers import WAIT, LiveServer
from .network_guard import GUARDED_SITE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OUTSIDE = ("192.0.2.1", 80)


@pytest.fixture
def listener():
    """A loopback TCP server socket (accepts are not needed: the kernel completes them)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()
    server.close()


def refused(attempt) -> str:
    """The guard's message for `attempt()`, which must be refused (and only by the guard)."""
    with network_guard.expected() as provoked:
        with pytest.raises(network_guard.OutboundConnectionBlocked) as error:
            attempt()
    assert provoked == [str(error.value)]
    return str(error.value)


# -- in this process --------------------------------------------------------------------
def test_the_guard_is_on_for_the_whole_suite():
    assert network_guard.installed()
    assert str(GUARDED_SITE) == os.environ["PYTHONPATH"].split(os.pathsep)[0]
    assert os.environ[network_guard.LOG_ENV]


def on_socket(family, kind, action):
    def attempt():
        with socket.socket(family, kind) as sock:
            action(sock)
    return attempt


TCP, UDP, TCP6 = ((socket.AF_INET, socket.SOCK_STREAM), (socket.AF_INET, socket.SOCK_DGRAM),
                  (socket.AF_INET6, socket.SOCK_STREAM))


@pytest.mark.parametrize("attempt", [
    lambda: socket.create_connection(OUTSIDE, timeout=1),
    on_socket(*TCP, lambda sock: sock.connect(OUTSIDE)),
    on_socket(*TCP, lambda sock: sock.connect_ex(OUTSIDE)),
    on_socket(*UDP, lambda sock: sock.sendto(b"x", OUTSIDE)),
    on_socket(*UDP, lambda sock: sock.sendto(b"x", 0, OUTSIDE)),
    on_socket(*UDP, lambda sock: sock.sendmsg([b"x"], [], 0, OUTSIDE)),
    on_socket(*TCP6, lambda sock: sock.connect(("2001:db8::1", 80, 0, 0))),
    on_socket(*TCP6, lambda sock: sock.connect(("::ffff:192.0.2.1", 80, 0, 0))),
    lambda: socket.getaddrinfo("example.com", 443),
    lambda: socket.gethostbyname("example.com"),
    lambda: socket.create_connection(("huggingface.co", 443), timeout=1),
], ids=["create_connection", "connect", "connect_ex", "udp-sendto", "udp-sendto-flags",
        "udp-sendmsg", "ipv6", "ipv4-mapped-ipv6", "getaddrinfo", "gethostbyname",
        "by-name"])
def test_non_loopback_addresses_are_refused_naming_the_address(attempt):
    message = refused(attempt)
    assert "network guard" in message and "refused" in message
    assert any(host in message for host in ("192.0.2.1", "2001:db8::1", "example.com",
                                            "huggingface.co")), message
    assert "test_no_outbound.py" in message  # names the code that tried


def test_a_library_that_swallows_the_error_is_still_caught():
    # urllib turns the refusal into URLError, as it would any network failure; the guard
    # has recorded it anyway, and conftest fails the test that let it happen.
    with network_guard.expected() as provoked:
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen("http://192.0.2.1/", timeout=1)
    assert len(provoked) == 1 and "192.0.2.1" in provoked[0]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "localhost", "::1", "[::1]",
                                  "::ffff:127.0.0.1", b"127.0.0.1"])
def test_loopback_names_and_addresses_are_allowed(host):
    assert network_guard.is_loopback(host)


@pytest.mark.parametrize("host", ["192.0.2.1", "10.0.0.1", "0.0.0.0", "::", "example.com",
                                  "localhost.example.com", "127.0.0.1.nip.io", "2130706433",
                                  "", None, 80])
def test_everything_else_is_not_loopback(host):
    assert not network_guard.is_loopback(host)


def test_loopback_and_unix_sockets_still_work(listener, tmp_path):
    with socket.create_connection(listener, timeout=WAIT):
        pass
    with socket.create_connection(("localhost", listener[1]), timeout=WAIT):
        pass
    assert socket.getaddrinfo("localhost", listener[1])
    assert socket.getaddrinfo(None, 0, flags=socket.AI_PASSIVE)  # what servers bind to
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"x", listener)
    path = str(tmp_path / "unix.sock")
    with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
        server.bind(path)
        server.listen()
        client.connect(path)


# -- in child processes -----------------------------------------------------------------
CHILD = """
import json, socket, sys
report = {"guarded": bool(getattr(socket.socket.connect, "_lumara_network_guard", False))}
try:
    socket.create_connection(("192.0.2.1", 80), timeout=1)
    report["outside"] = "connected"
except OSError as error:
    report["outside"] = f"{type(error).__name__}: {error}"
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5):
    report["loopback"] = "connected"
print(json.dumps(report))
"""


def test_every_child_python_is_guarded_too(listener, tmp_path):
    log = tmp_path / "child-blocked.log"  # this child's refusals are expected: not the suite's
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(listener[1])], cwd=tmp_path, capture_output=True,
        text=True, timeout=60, env=dict(os.environ, **{network_guard.LOG_ENV: str(log)}))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["guarded"] is True
    assert report["outside"].startswith("OutboundConnectionBlocked")
    assert "192.0.2.1" in report["outside"]
    assert report["loopback"] == "connected"
    logged = log.read_text()
    assert "192.0.2.1" in logged and "[pid " in logged
    assert "network guard" in result.stderr  # said where a person running it will look


# -- the app with the guard on ----------------------------------------------------------
def test_the_app_starts_and_serves_with_the_guard_on(make_app):
    app = make_app()
    assert app.test_client().get("/health").status_code == 200
    server = LiveServer(app)
    try:
        status, added = server.post("/api/memories", {"content": "Guarded and served."})
        assert status == 201
        status, found = server.get("/api/memories/search?q=guarded")
        assert status == 200 and found["results"][0]["memory"]["id"] == added["memory"]["id"]
        client = server.connect()
        client.send(json.dumps({"type": "chat", "content": "Hello!"}))
        events = [json.loads(client.receive(timeout=WAIT))]
        while events[-1]["type"] != "done":
            events.append(json.loads(client.receive(timeout=WAIT)))
        assert events[-1]["status"] == "complete"
    finally:
        server.stop()


def test_the_real_server_process_starts_and_serves_with_the_guard_on(tmp_path):
    # Any attempt to reach out (a model hub, telemetry) lands in the suite's log and fails
    # this test. Served, not waited for until the models are loaded: tests/test_server.py
    # does that, and is guarded the same way.
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "app.py", "--data-dir", str(tmp_path / "data"), "--port",
             str(port)], cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
            env=dict(os.environ, HF_HUB_OFFLINE="0"))  # Lumara must force offline itself
    try:
        health = wait_for_health(base, process, log_path, timeout=120)
        # Read once the server answers: until the child has exec'd Python, /proc shows the
        # environment it was forked with, not the one it was given.
        environ = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
        assert any(entry.startswith(b"PYTHONPATH=" + str(GUARDED_SITE).encode())
                   for entry in environ)
        assert health["offline"] is True
        with urllib.request.urlopen(base + "/api/memories", timeout=WAIT) as response:
            assert response.status == 200 and json.loads(response.read())["total"] == 0
    finally:
        process.terminate()
        process.wait(30)
    assert "network guard" not in log_path.read_text(errors="replace")


def wait_for_health(base: str, process, log_path: Path, *, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text(errors="replace")[-3000:]
        try:
            with urllib.request.urlopen(base + "/health", timeout=WAIT) as response:
                health = json.loads(response.read())
            assert health["status"] != "error", health
            return health
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise AssertionError(f"/health never answered: "
                         f"{log_path.read_text(errors='replace')[-3000:]}")
