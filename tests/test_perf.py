"""The performance monitor: its statistics, its window, and the start-up and RSS recorders."""

from __future__ import annotations

import statistics
import threading
import time

import pytest

from lumara_web.inference.loading import BackgroundLoad
from lumara_web.observability.perf import (
    WINDOW,
    PerfMonitor,
    RssSampler,
    process_started_at,
    record_startup,
)

# Known data with a skew, an outlier and repeats: enough for the percentiles to interpolate.
SAMPLES = [12.0, 3.5, 7.25, 7.25, 100.0, 0.5, 42.0, 9.0, 15.5, 2.0, 8.0, 61.0, 5.0]


def percentile(data: list[float], p: int) -> float:
    """The p-th percentile as the statistics module computes it (inclusive method)."""
    return statistics.quantiles(data, n=100, method="inclusive")[p - 1]


def test_statistics_equal_the_statistics_module():
    monitor = PerfMonitor()
    for value in SAMPLES:
        monitor.record("op_ms", value)
    summary = monitor.summary("op_ms")
    assert summary.count == summary.window == len(SAMPLES)
    assert summary.min == min(SAMPLES)
    assert summary.max == max(SAMPLES)
    assert summary.last == SAMPLES[-1]
    assert summary.avg == pytest.approx(statistics.mean(SAMPLES))
    assert summary.median == pytest.approx(statistics.median(SAMPLES))
    assert summary.p95 == pytest.approx(percentile(SAMPLES, 95))
    assert summary.p99 == pytest.approx(percentile(SAMPLES, 99))
    assert summary.samples == tuple(SAMPLES)
    assert summary.total == pytest.approx(sum(SAMPLES))


def test_the_window_keeps_the_last_100_and_count_counts_all():
    monitor = PerfMonitor()
    values = [float(value) for value in range(250)]
    for value in values:
        monitor.record("op_ms", value)
    summary = monitor.summary("op_ms")
    recent = values[-WINDOW:]
    assert WINDOW == 100
    assert summary.count == 250
    assert summary.window == 100
    assert summary.samples == tuple(recent)
    assert summary.min == recent[0]
    assert summary.median == pytest.approx(statistics.median(recent))
    assert summary.p95 == pytest.approx(percentile(recent, 95))
    assert summary.total == pytest.approx(sum(values))  # every sample, not just the window


def test_an_operation_never_recorded_has_no_summary():
    monitor = PerfMonitor()
    assert monitor.summary("never_ms") is None
    assert monitor.summaries() == {}


def test_summaries_cover_every_operation_and_counters_accumulate():
    monitor = PerfMonitor()
    monitor.record("b_ms", 2)
    monitor.record("a_ms", 1)
    monitor.increment("hits")
    monitor.increment("hits", 4)
    assert list(monitor.summaries()) == ["a_ms", "b_ms"]
    assert monitor.summaries()["b_ms"] == monitor.summary("b_ms")
    assert monitor.counters() == {"hits": 5}


def test_timed_records_only_on_success():
    monitor = PerfMonitor()
    with monitor.timed("work_ms"):
        pass
    with pytest.raises(ValueError):
        with monitor.timed("work_ms"):
            raise ValueError("failed")
    summary = monitor.summary("work_ms")
    assert summary.count == 1
    assert summary.last >= 0


def test_recording_from_many_threads_loses_nothing():
    monitor = PerfMonitor()
    threads, per_thread = 8, 500
    start = threading.Barrier(threads)

    def work(index: int) -> None:
        start.wait()
        for _ in range(per_thread):
            monitor.record("shared_ms", index)
            monitor.increment("calls")
            monitor.summary("shared_ms")  # reading while others write must not fail

    workers = [threading.Thread(target=work, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    summary = monitor.summary("shared_ms")
    assert summary.count == threads * per_thread
    assert summary.window == WINDOW
    assert summary.total == sum(index * per_thread for index in range(threads))
    assert monitor.counters() == {"calls": threads * per_thread}


def test_rss_sampler_records_a_positive_number():
    monitor = PerfMonitor()
    rss = RssSampler(monitor).sample()
    assert rss > 0
    assert monitor.summary("process.rss_mb").last == rss


def test_maybe_sample_waits_for_the_interval():
    monitor = PerfMonitor()
    sampler = RssSampler(monitor, interval=3600)
    sampler.maybe_sample()
    sampler.maybe_sample()  # within the hour: skipped
    assert monitor.summary("process.rss_mb").count == 1


def test_the_process_started_before_now():
    started = process_started_at()
    assert 0 < started <= time.time()


def loads(*, fail: str | None = None) -> dict[str, BackgroundLoad]:
    def loader(name: str):
        def load():
            if name == fail:
                raise RuntimeError(f"{name} broke")
            return f"{name} model"
        return load

    result = {name: BackgroundLoad(f"{name} model", loader(name)) for name in ("embedding", "chat")}
    for load in result.values():
        load.start()
    return result


@pytest.mark.parametrize("first_setup, operation",
                         [(True, "startup.first_setup_ms"), (False, "startup.ready_ms")])
def test_record_startup_records_the_start_and_each_load(first_setup, operation):
    monitor = PerfMonitor()
    record_startup(monitor, loads(), first_setup=first_setup).join(timeout=30)
    other = "startup.ready_ms" if first_setup else "startup.first_setup_ms"
    assert set(monitor.summaries()) == {operation, "embedding.load_ms", "chat.load_ms"}
    assert monitor.summary(other) is None
    assert monitor.summary(operation).count == 1
    assert monitor.summary(operation).last > 0


def test_record_startup_records_nothing_when_a_load_failed():
    monitor = PerfMonitor()
    thread = record_startup(monitor, loads(fail="chat"), first_setup=False)
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert monitor.summaries() == {}
