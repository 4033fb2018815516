"""Hand freed heap memory back to the system.

glibc keeps freed heap for reuse, so one large allocation burst (a batch of long texts
through ONNX Runtime, a JSON-schema generation in llama.cpp) would leave the server that much
larger for good. Measured here: ~400 MB after one batch of long texts, ~37 MB after schema-
constrained generation; trimming costs ~0.1 ms when little was freed, ~30 ms after 400 MB.
Bursts outside the models (an import, 200 searches at once) free memory in every thread's
own arena: the server caps the arenas at start-up and trims every few seconds. Where glibc
is absent (musl, macOS) all of this does nothing."""

from __future__ import annotations

import ctypes
import threading
from typing import Any, Callable

M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # mallopt's parameter numbers, from glibc's malloc.h
# Two arenas for the whole server: glibc's default (8 a core) kept up to 16 heaps, each
# holding its own freed memory. Measured over three rounds of imports, 200 concurrent
# searches, chats and oversized frames: 548 MB after, against 486 MB with two and trimming.
ARENAS = 2
# Allocations from 128 KiB up get pages of their own, given back when freed. glibc's default
# raises this threshold to the largest block ever freed (up to 32 MB), after which arrays of
# a few MB (search scores, embedding batches, the index's growing parts) pile into the heap
# and fragment it. Measured over two soak rounds: 444 → 429 MB.
MMAP_THRESHOLD_BYTES = 128 * 1024
TRIM_INTERVAL_SECONDS = 15  # a trim with little to give back costs ~0.1 ms


def _glibc() -> Any:
    try:
        libc = ctypes.CDLL(None)
        libc.malloc_trim, libc.mallopt  # glibc; musl and macOS have neither
        return libc
    except (AttributeError, OSError):
        return None


_GLIBC = _glibc()


def release_freed_memory() -> None:
    if _GLIBC is not None:
        _GLIBC.malloc_trim(0)


def limit_heap_growth(arenas: int = ARENAS) -> None:
    """Cap glibc's malloc arenas and fix its mmap threshold; called before the threads that
    would make more arenas start."""
    if _GLIBC is not None:
        _GLIBC.mallopt(M_ARENA_MAX, arenas)
        _GLIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def trim_periodically(stop: threading.Event, interval: float = TRIM_INTERVAL_SECONDS,
                      also: tuple[Callable[[], None], ...] = ()) -> threading.Thread | None:
    """release_freed_memory() and each of `also` (other memory to hand back) every
    `interval` seconds on a daemon thread, until `stop`."""
    if _GLIBC is None and not also:
        return None

    def trim_until_stopped() -> None:
        while not stop.wait(interval):
            release_freed_memory()
            for release in also:
                release()

    thread = threading.Thread(target=trim_until_stopped, name="lumara-heap-trim", daemon=True)
    thread.start()
    return thread
