"""The metrics report: one dict built from the live services, which /metrics renders as HTML,
/metrics.json as JSON and /metrics?format=prometheus as Prometheus text (one data callback,
several renderings). Plain Python: it knows nothing of Flask."""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .perf import process_started_at
from .targets import TARGETS, Target

if TYPE_CHECKING:
    from ..services import Services

# The figures `python -m lumara_bench` recorded (docs/BENCHMARKS.md is their report); they
# ship with the package so /metrics shows them beside the live ones. Read, never written.
BENCHMARKS_PATH = Path(__file__).with_name("benchmarks.json")

# The benchmark row fields the report passes on (benchmarks.json name → report name).
_BENCH_NUMBERS = {"ours_p50": "p50", "ours_p95": "p95", "raw_p50": "raw_p50",
                  "ratio": "ratio", "recall": "recall"}
_BENCH_TEXTS = {"label": "label", "raw": "raw", "unit": "unit"}


def build_report(services: "Services", memory_count: int, *,
                 benchmarks_path: Path | str | None = BENCHMARKS_PATH,
                 targets: Iterable[Target] = TARGETS) -> dict:
    """Everything /metrics shows. Takes a fresh RSS sample first, so "RSS now" is now."""
    rss_now = services.rss.sample()
    monitor = services.monitor
    summaries = monitor.summaries()
    benchmarks = load_benchmarks(benchmarks_path)
    bench_rows = benchmarks["rows"] if benchmarks else {}
    embedding_counters = dict(services.embeddings.status().get("counters") or {})
    prompt_cache = services.engine.status().get("prompt_cache")
    started = process_started_at()
    now = time.time()
    return {
        "generated": _iso(now),
        "process": {"started": _iso(started), "uptime_s": round(now - started, 3),
                    "rss_mb": rss_now},
        "memories": memory_count,
        "targets": [_target_row(target, summaries.get(target.metric), bench_rows.get(target.key))
                    for target in targets],
        "operations": {name: {**summary.to_dict(), "total": summary.total}
                       for name, summary in summaries.items()},
        "counters": {"monitor": monitor.counters(), "embedding": embedding_counters,
                     "prompt_cache": prompt_cache},
        "hit_rates": {"embedding_hit_rate": embedding_hit_rate(embedding_counters),
                      "prompt_cache_reuse_rate": (prompt_cache or {}).get("reuse_rate")},
        "benchmark": None if benchmarks is None else {
            "generated": benchmarks["generated"], "machine": benchmarks["machine"],
            "path": str(benchmarks_path)},
    }


def embedding_hit_rate(counters: dict) -> float | None:
    """Share of embeddings served without the model (memo or persistent cache), or None
    before the first embedding."""
    hits = counters.get("memo_hits", 0) + counters.get("cache_hits", 0)
    total = hits + counters.get("computed", 0)
    return round(hits / total, 4) if total else None


def _target_row(target: Target, summary, bench: dict | None) -> dict:
    value = getattr(summary, target.statistic) if summary else None
    if bench is not None:
        # The benchmark reports p50 and p95; an aim about the average or the last value is
        # judged on the p50 (the bench's runs are repeats of the same measurement).
        bench_value = bench.get("p95") if target.statistic == "p95" else bench.get("p50")
        bench = {**bench, "status": target.status(bench_value)}
    return {
        "key": target.key, "operation": target.operation, "promise": target.promise,
        "aim": target.aim, "metric": target.metric, "statistic": target.statistic,
        "aim_value": target.aim_value, "promise_value": target.promise_value,
        "unit": target.unit, "value": value,
        "p50": summary.median if summary else None, "p95": summary.p95 if summary else None,
        "samples": summary.count if summary else 0,
        "status": target.status(value), "benchmark": bench,
    }


def load_benchmarks(path: Path | str | None) -> dict | None:
    """The last benchmark run: {"generated", "machine", "rows": {key: row}}, or None when the
    file is missing or unreadable. Every field is checked: a malformed file (hand-edited, or
    half-written by a bench run in progress) must never break /metrics."""
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        return None
    rows: dict[str, dict] = {}
    for row in data["rows"]:
        if not isinstance(row, dict) or not isinstance(row.get("key"), str):
            continue
        clean: dict[str, Any] = {name: _number(row.get(field))
                                 for field, name in _BENCH_NUMBERS.items()}
        clean.update({name: row[field] if isinstance(row.get(field), str) else None
                      for field, name in _BENCH_TEXTS.items()})
        rows.setdefault(row["key"], clean)  # the first row of a key wins
    generated = data.get("generated")
    machine = data.get("machine")
    return {"generated": generated if isinstance(generated, str) else None,
            "machine": machine if isinstance(machine, dict) else None, "rows": rows}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")
