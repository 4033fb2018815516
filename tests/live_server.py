"""`python app.py` in a child process, as a user runs it, for the tests that need the whole
server: start-up, crash safety, load. (tests/helpers.py's LiveServer serves an in-process app
with fakes instead.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from lumara_bench.server import free_port
from lumara_web.observability.perf import process_rss_mb

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Hang detectors, not speed limits. Seconds an HTTP request may take: far above what a
# busy two-core machine needs.
REQUEST_TIMEOUT = 60
# Seconds for a start, a warm-up or a chat: a chat waits behind every answer queued before
# it, and inference runs at a lower CPU priority (inference_niceness), so on a machine busy
# with other work these took minutes where they take seconds alone.
WAIT_TIMEOUT = 300
CHAT_TIMEOUT = WAIT_TIMEOUT


def request(base: str, path: str, body: Any = None, method: str | None = None,
            timeout: float = REQUEST_TIMEOUT) -> tuple[int, dict]:
    """(status, JSON body) of one request; HTTP errors are returned, not raised."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


class AppProcess:
    """`python app.py --data-dir <data_dir> --port <free port> [extra args]`. Its output goes
    to a log file (a pipe nobody reads would fill up and block the server) that assertion
    messages quote."""

    def __init__(self, data_dir: Path, *extra_args: str, log_path: Path | None = None,
                 models_dir: Path | None = None):
        """`models_dir`: share this folder as <data_dir>/models, so the ONNX export of the
        embedding model (~8 s) is made once per test session (conftest's
        embedding_cache_dir), not once per data folder."""
        if models_dir is not None and not (Path(data_dir) / "models").exists():
            Path(data_dir).mkdir(mode=0o700, parents=True, exist_ok=True)  # as Lumara makes it
            (Path(data_dir) / "models").symlink_to(models_dir, target_is_directory=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or Path(data_dir).parent / f"server-{self.port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, HF_HUB_OFFLINE="0")  # Lumara must force offline itself
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "app.py", "--data-dir", str(data_dir), "--port",
                 str(self.port), *extra_args],
                cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]

    def request(self, path: str, body: Any = None, method: str | None = None,
                timeout: float = REQUEST_TIMEOUT) -> tuple[int, dict]:
        return request(self.base, path, body, method, timeout)

    def health(self) -> dict:
        code, health = self.request("/health")
        assert code == 200, health
        return health

    def wait_until(self, status: str, timeout: float = WAIT_TIMEOUT) -> dict:
        """/health once its status is `status` ("starting", "ok" or "error")."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, \
                f"the server exited with {self.process.returncode}:\n{self.output()}"
            try:
                health = self.health()
                if health["status"] == status:
                    return health
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"/health never reached {status!r}:\n{self.output()}")

    def wait_models_settled(self, timeout: float = WAIT_TIMEOUT) -> dict:
        """/health once both models have loaded or failed (whatever the overall status)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.health()
            states = {health["embedder"]["state"], health["chat_model"]["state"]}
            if states <= {"ready", "error"}:
                return health
            time.sleep(0.05)
        raise AssertionError(f"the models never finished loading:\n{self.output()}")

    def wait_idle(self, timeout: float = WAIT_TIMEOUT) -> dict:
        """/health once the chat model's queue is empty and nothing runs (the warm-up
        answers of a fresh start are done)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.health()
            queue = health["chat_model"]["queue"]
            if not queue["waiting"] and not queue["running"]:
                return health
            time.sleep(0.05)
        raise AssertionError(f"the chat queue never emptied:\n{self.output()}")

    def rss_mb(self) -> float:
        """Resident memory now, from /proc (Linux)."""
        rss = process_rss_mb(self.pid)
        assert rss is not None, f"no VmRSS in /proc/{self.pid}/status"
        return rss

    def threads_and_files(self) -> tuple[int, int]:
        """(threads, open file descriptors) now, from /proc (Linux)."""
        return (len(os.listdir(f"/proc/{self.pid}/task")),
                len(os.listdir(f"/proc/{self.pid}/fd")))

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or a power-button reboot of the
        process (the OS still has every write() SQLite made)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> "AppProcess":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


def report(capsys: Any, line: str) -> None:
    """Print a figure for the run's log even when pytest captures output."""
    with capsys.disabled():
        print(f"\n    {line}", flush=True)


def chat(base: str, content: str, *, send_at: float | None = None,
         timeout: float = CHAT_TIMEOUT) -> list[tuple[float, dict]]:
    """One message over a new /ws/chat connection, sent at `send_at` (time.monotonic())
    if given: (time.monotonic() at receipt, event) for every event up to the turn's last
    one, turn_end. The first item is the send time with the event {"type": "sent"}.
    (A connection runs its messages one at a time, so concurrent chats need one each.)"""
    from simple_websocket import Client

    client = Client.connect(base.replace("http://", "ws://") + "/ws/chat")
    try:
        if send_at is not None:
            time.sleep(max(0.0, send_at - time.monotonic()))
        events = [(time.monotonic(), {"type": "sent"})]
        client.send(json.dumps({"type": "chat", "content": content}))
        deadline = time.monotonic() + timeout
        while True:
            frame = client.receive(timeout=max(0.0, deadline - time.monotonic()))
            if frame is None:
                raise AssertionError(f"no turn_end within {timeout} s; got {events}")
            events.append((time.monotonic(), json.loads(frame)))
            if events[-1][1]["type"] == "turn_end":
                return events
    finally:
        client.close()
