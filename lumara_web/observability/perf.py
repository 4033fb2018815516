"""The performance monitor: the recent samples of every timed operation, plus counters.

One PerfMonitor per process (created by create_app, injected into the services). Recording is
a lock and a deque append, cheap enough for every embedding and every request; statistics are
computed only when someone asks (/metrics, the benchmark)."""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np

if TYPE_CHECKING:
    from ..inference.loading import BackgroundLoad

# The definition of "recent": statistics over the last 100 samples of each operation.
WINDOW = 100


@dataclass(frozen=True)
class Summary:
    """Statistics over the recent window; `count` is every sample ever recorded."""

    operation: str
    count: int
    window: int
    min: float
    max: float
    avg: float
    median: float
    p95: float
    p99: float
    last: float
    samples: tuple[float, ...]
    total: float = 0.0  # the sum of every sample ever recorded (Prometheus' summary _sum)

    def to_dict(self, *, with_samples: bool = True) -> dict:
        data = {"count": self.count, "window": self.window, "min": self.min, "max": self.max,
                "avg": self.avg, "median": self.median, "p95": self.p95, "p99": self.p99,
                "last": self.last}
        if with_samples:
            data["samples"] = list(self.samples)
        return data


def summarize(operation: str, samples: list[float], count: int,
              total: float | None = None) -> Summary:
    values = np.asarray(samples, dtype=np.float64)
    # numpy's default (linear) percentile: the same as statistics.quantiles(method="inclusive").
    median, p95, p99 = np.percentile(values, [50, 95, 99])
    return Summary(operation=operation, count=count, window=len(samples),
                   min=float(values.min()), max=float(values.max()), avg=float(values.mean()),
                   median=float(median), p95=float(p95), p99=float(p99), last=float(values[-1]),
                   samples=tuple(samples),
                   total=float(values.sum()) if total is None else total)


class PerfMonitor:
    def __init__(self, window: int = WINDOW):
        self.window = window
        self._lock = threading.Lock()
        self._samples: dict[str, deque[float]] = {}
        self._counts: dict[str, int] = {}
        self._totals: dict[str, float] = {}
        self._counters: dict[str, int] = {}
        self.started_at = time.time()

    def record(self, operation: str, value: float) -> None:
        """One sample of `operation` (milliseconds for times, by the name's convention)."""
        with self._lock:
            samples = self._samples.get(operation)
            if samples is None:
                samples = self._samples[operation] = deque(maxlen=self.window)
            samples.append(float(value))
            self._counts[operation] = self._counts.get(operation, 0) + 1
            self._totals[operation] = self._totals.get(operation, 0.0) + float(value)

    @contextmanager
    def timed(self, operation: str) -> Iterator[None]:
        """Record the block's duration in milliseconds (only when it finishes normally:
        a failed call's time says nothing about the operation's speed)."""
        started = time.perf_counter()
        yield
        self.record(operation, (time.perf_counter() - started) * 1000)

    def increment(self, counter: str, amount: int = 1) -> None:
        with self._lock:
            self._counters[counter] = self._counters.get(counter, 0) + amount

    def summary(self, operation: str) -> Summary | None:
        with self._lock:
            samples = list(self._samples.get(operation, ()))
            count = self._counts.get(operation, 0)
            total = self._totals.get(operation, 0.0)
        return summarize(operation, samples, count, total) if samples else None

    def summaries(self) -> dict[str, Summary]:
        with self._lock:
            recorded = {name: (list(samples), self._counts[name], self._totals[name])
                        for name, samples in self._samples.items()}
        return {name: summarize(name, samples, count, total)
                for name, (samples, count, total) in sorted(recorded.items())}

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counters.items()))


def process_rss_mb(pid: int | str = "self") -> float | None:
    """A process's resident memory now, in MiB (this one by default; Linux /proc: None
    where unavailable)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class RssSampler:
    """Records the process RSS at most every `interval` seconds, piggybacking on requests
    (no thread of its own), so /metrics can show its trend."""

    def __init__(self, monitor: PerfMonitor, interval: float = 10.0):
        self.monitor = monitor
        self.interval = interval
        self._last = float("-inf")

    def sample(self) -> float | None:
        """Take a sample now."""
        self._last = time.monotonic()
        rss = process_rss_mb()
        if rss is not None:
            self.monitor.record("process.rss_mb", rss)
        return rss

    def maybe_sample(self) -> None:
        """Take a sample if the last one is older than the interval."""
        if time.monotonic() - self._last >= self.interval:
            self.sample()


_IMPORTED_AT = time.time()


def process_started_at() -> float:
    """When this process began (epoch seconds), so start-up times include Python's own
    start and every import; falls back to this module's import time off Linux."""
    try:
        with open("/proc/self/stat") as stat:
            # Field 22, counted after the ")" that closes the command name (which may hold
            # spaces): start time in clock ticks since boot.
            ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as kernel:
            boot = next(int(line.split()[1]) for line in kernel if line.startswith("btime"))
    except (OSError, ValueError, IndexError, StopIteration):
        return _IMPORTED_AT
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def record_startup(monitor: PerfMonitor, loads: dict[str, "BackgroundLoad"], *,
                   first_setup: bool) -> threading.Thread:
    """Once every model has loaded, record each load time and the start-up time: as
    startup.first_setup_ms when the data dir was new, else startup.ready_ms."""

    def wait_and_record() -> None:
        for load in loads.values():
            load.settle(timeout=24 * 3600)
        if any(load.state != "ready" for load in loads.values()):
            return  # a failed load is reported by /health; its time is not a start-up time
        for name, load in loads.items():
            monitor.record(f"{name}.load_ms", (load.seconds or 0.0) * 1000)
        operation = "startup.first_setup_ms" if first_setup else "startup.ready_ms"
        monitor.record(operation, (time.time() - process_started_at()) * 1000)

    thread = threading.Thread(target=wait_and_record, name="lumara-startup", daemon=True)
    thread.start()
    return thread
