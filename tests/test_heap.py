"""The server hands freed C heap back to the system every few seconds, and stops when told."""

from __future__ import annotations

import threading

import pytest

from lumara_web.inference import heap

pytestmark = pytest.mark.skipif(heap._GLIBC is None, reason="glibc only")


def test_the_trimmer_trims_until_it_is_stopped(monkeypatch):
    trims = []
    twice = threading.Event()

    def counted() -> None:
        trims.append(1)
        if len(trims) >= 2:
            twice.set()

    monkeypatch.setattr(heap, "release_freed_memory", counted)
    stop = threading.Event()
    thread = heap.trim_periodically(stop, interval=0.01)
    assert twice.wait(10)
    stop.set()
    thread.join(10)
    assert not thread.is_alive() and thread.daemon



def test_the_trimmer_also_hands_back_what_it_is_given():
    released = threading.Event()
    stop = threading.Event()
    thread = heap.trim_periodically(stop, interval=0.01, also=(released.set,))
    assert released.wait(10)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
