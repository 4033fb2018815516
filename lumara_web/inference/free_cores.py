"""How many threads the chat model should use right now: the cores other processes leave free.

llama.cpp's threads wait for each other at every step of every token. When another process
keeps one of two cores busy, two threads spin at those barriers while one of them waits to be
scheduled, and an answer takes several times as long as with one thread. Measured here with
llama-cpp-python alone, 32 tokens beside a `while 1: pass` process: 900-1,900 ms with two
threads, 420-620 ms with one (300-380 ms with two on a quiet machine).

The load of other processes is the machine's busy CPU time (/proc/stat) less this process's
own (os.times), over the last half second or more. Where /proc/stat is missing (macOS,
Windows) the configured count always stands.
"""

from __future__ import annotations

import os
import time
from typing import Callable

MEASURE_EVERY_SECONDS = 0.5  # shorter windows hold too few clock ticks to tell cores apart
TAKEN_FROM = 0.7  # of a core kept busy by others, from which inference leaves it to them


def machine_busy_seconds() -> float | None:
    """CPU seconds every core of the machine has spent working since boot (None off Linux)."""
    try:
        with open("/proc/stat", "rb") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal (guest time is inside user and nice)
    user, nice, system, idle, iowait, irq, softirq, steal = (int(f) for f in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_busy_seconds() -> float:
    """CPU seconds this process (every thread of it) has spent working."""
    times = os.times()
    return times.user + times.system


class FreeCores:
    """Call it to get the thread count for the next decoding step: between 1 and `most`."""

    def __init__(self, most: int, cores: int | None = None, *,
                 machine: Callable[[], float | None] = machine_busy_seconds,
                 own: Callable[[], float] = own_busy_seconds,
                 clock: Callable[[], float] = time.monotonic):
        self.most = max(1, most)
        self.cores = cores or os.cpu_count() or 1
        self._machine, self._own, self._clock = machine, own, clock
        self._threads = self.most
        self._last = self._sample()

    def _sample(self) -> tuple[float, float, float] | None:
        machine = self._machine()
        return None if machine is None else (self._clock(), machine, self._own())

    def __call__(self) -> int:
        if self._last is None:
            return self.most
        now = self._clock()
        if now - self._last[0] < MEASURE_EVERY_SECONDS:
            return self._threads
        sample = self._sample()
        if sample is None:
            return self.most
        elapsed = sample[0] - self._last[0]
        others = max(0.0, (sample[1] - self._last[1]) - (sample[2] - self._last[2])) / elapsed
        self._last = sample
        # A core counts as taken from 0.7 of one busy: below that, the threads lose less
        # time waiting than one thread fewer would.
        self._threads = max(1, min(self.most, self.cores - int(others + 1 - TAKEN_FROM)))
        return self._threads
