"""The chat model's thread count follows the cores other processes leave free."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from lumara_web.inference.free_cores import MEASURE_EVERY_SECONDS, FreeCores, machine_busy_seconds


class Machine:
    """A clock and CPU counters the test moves by hand."""

    def __init__(self):
        self.now = self.machine = self.own = 0.0

    def run(self, seconds: float, *, own_cores: float, other_cores: float) -> None:
        self.now += seconds
        self.own += seconds * own_cores
        self.machine += seconds * (own_cores + other_cores)

    def free_cores(self, most: int, cores: int) -> FreeCores:
        return FreeCores(most, cores, machine=lambda: self.machine, own=lambda: self.own,
                         clock=lambda: self.now)


def test_a_quiet_machine_gets_every_thread():
    machine = Machine()
    free = machine.free_cores(2, 2)
    machine.run(1, own_cores=2, other_cores=0.1)
    assert free() == 2


def test_a_process_holding_a_core_takes_one_thread_away_and_gives_it_back():
    machine = Machine()
    free = machine.free_cores(2, 2)
    machine.run(1, own_cores=1, other_cores=1)
    assert free() == 1
    machine.run(1, own_cores=1, other_cores=1)  # still 1 while the burner runs: stable
    assert free() == 1
    machine.run(1, own_cores=1, other_cores=0)
    assert free() == 2


def test_never_fewer_than_one_nor_more_than_configured():
    machine = Machine()
    free = machine.free_cores(3, 8)
    machine.run(1, own_cores=1, other_cores=8)
    assert free() == 1
    machine.run(1, own_cores=3, other_cores=0)
    assert free() == 3
    machine.run(1, own_cores=3, other_cores=5.5)  # 5 cores and half of one busy elsewhere
    assert free() == 3
    machine.run(1, own_cores=2, other_cores=6)
    assert free() == 2


def test_light_load_elsewhere_keeps_the_core():
    machine = Machine()
    free = machine.free_cores(2, 2)
    machine.run(1, own_cores=2, other_cores=0.5)  # a browser drawing the streamed answer
    assert free() == 2


def test_the_count_is_measured_over_a_window_not_per_token():
    machine = Machine()
    free = machine.free_cores(2, 2)
    machine.run(MEASURE_EVERY_SECONDS / 5, own_cores=1, other_cores=1)
    assert free() == 2  # too short a window to judge: keep what it was
    machine.run(MEASURE_EVERY_SECONDS, own_cores=1, other_cores=1)
    assert free() == 1


def test_without_proc_stat_the_configured_count_stands():
    free = FreeCores(2, 2, machine=lambda: None, own=lambda: 0.0, clock=lambda: 5.0)
    assert free() == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_a_real_busy_process_is_seen():
    """On the real counters: a spinning child process takes a thread away."""
    assert machine_busy_seconds() is not None
    burner = subprocess.Popen([sys.executable, "-c", "while 1: pass"])
    try:
        free = FreeCores(2, 2)
        deadline = time.monotonic() + 30
        while free() != 1 and time.monotonic() < deadline:
            time.sleep(MEASURE_EVERY_SECONDS)  # a window of the child's work to measure
        assert free() == 1
    finally:
        burner.kill()
        burner.wait()
