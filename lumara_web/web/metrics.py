"""/metrics: the performance report for people (HTML), programs (/metrics.json) and Prometheus
(text exposition); plus the request timing hooks and the browser's page-load beacon.

All three renderings come from one call to metrics_report.build_report."""

from __future__ import annotations

import re
import time
from typing import Any, Iterator

from flask import Blueprint, Flask, Response, g, jsonify, render_template, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from ..errors import ValidationError
from ..memory.validation import reject_unknown_fields
from ..observability import metrics_report
from ..observability.perf import WINDOW
from .context import current_services, get_db, json_body

bp = Blueprint("metrics", __name__)

# Requests timed into api.request_ms: the JSON API and the OpenAI-compatible API.
TIMED_PREFIXES = ("/api/", "/v1/")
# Ten minutes: a "load" longer than that is a tab left loading in the background, not a
# figure about Lumara's speed.
MAX_PAGE_LOAD_MS = 600_000
FORMATS = ("html", "json", "prometheus")
STATUSES = ("met", "promise met", "missed", "no data")
QUANTILES = (("0.5", "median"), ("0.95", "p95"), ("0.99", "p99"))


def init_app(app: Flask) -> None:
    app.before_request(_start_timing)
    app.after_request(_finish_timing)


def current_report() -> dict:
    # The module attribute is read on each call, so tests can point it at another file.
    services = current_services()
    return metrics_report.build_report(services, services.memories.count(get_db()),
                                       benchmarks_path=metrics_report.BENCHMARKS_PATH)


# -- pages ------------------------------------------------------------------------------
@bp.get("/metrics")
def metrics():
    wanted = request.args.get("format", "")
    if wanted and wanted not in FORMATS:
        raise ValidationError(f"format={wanted[:40]!r} is not one of {', '.join(FORMATS)}.",
                              code="invalid_format")
    if not wanted:
        wanted = "prometheus" if _prefers_plain_text() else "html"
    report = current_report()
    if wanted == "json":
        response = jsonify(report)
    elif wanted == "prometheus":
        response = Response(prometheus_text(report), content_type=CONTENT_TYPE_LATEST)
    else:
        response = Response(render_html(report), content_type="text/html; charset=utf-8")
    response.vary.add("Accept")
    return response


@bp.get("/metrics.json")
def metrics_json():
    return jsonify(current_report())


@bp.post("/api/metrics/page-load")
def page_load():
    """The browser's beacon: {"ms": how long the main page took to load}."""
    ms = parse_page_load(json_body())
    current_services().monitor.record("page.load_ms", ms)
    return jsonify({"recorded": {"operation": "page.load_ms", "ms": ms}})


def parse_page_load(body: dict) -> float:
    reject_unknown_fields(body, {"ms"})
    if "ms" not in body:
        raise ValidationError("ms is required: the page's load time in milliseconds.",
                              code="invalid_ms")
    value = body["ms"]
    # bool is an int to Python, not a duration; the range check also refuses huge ints and
    # 1e999 (which JSON parsing turns into infinity).
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0 <= value <= MAX_PAGE_LOAD_MS:
        shown = repr(value)[:40] if isinstance(value, (int, float, str)) else type(value).__name__
        raise ValidationError(f"ms must be a number of milliseconds from 0 to "
                              f"{MAX_PAGE_LOAD_MS}; got {shown}.", code="invalid_ms")
    return float(value)


def _prefers_plain_text() -> bool:
    """True when the client asks for text/plain over text/html (Prometheus scrapers send
    'text/plain;version=0.0.4;q=0.4,*/*;q=0.1'; browsers name text/html)."""
    return _quality("text/plain") > _quality("text/html")


def _quality(mimetype: str) -> float:
    accept = request.accept_mimetypes
    # Werkzeug matches "text/plain;version=0.0.4" only to a server type with the same
    # parameters; any version of the text format is fine here.
    exact = [quality for value, quality in accept
             if value.split(";")[0].strip().lower() == mimetype]
    return max(exact) if exact else accept.quality(mimetype)


# -- request timing ---------------------------------------------------------------------
def _start_timing() -> None:
    if request.path.startswith(TIMED_PREFIXES):
        g.metrics_started = time.perf_counter()
        # A request that starts while an answer streams shows whether chat blocks the API.
        g.metrics_busy = bool(current_services().engine.status()["queue"]["running"])


def _finish_timing(response: Response) -> Response:
    services = current_services()
    started = g.pop("metrics_started", None)
    if started is not None:
        elapsed_ms = (time.perf_counter() - started) * 1000
        services.monitor.record("api.request_ms", elapsed_ms)
        if g.pop("metrics_busy", False):
            services.monitor.record("api.busy_request_ms", elapsed_ms)
    services.rss.maybe_sample()
    return response


# -- HTML -------------------------------------------------------------------------------
# Sparkline size in SVG user units; CSS scales the drawing to the card.
SPARK_WIDTH, SPARK_HEIGHT, SPARK_PAD = 200, 40, 3
STATUS_ICONS = {"met": "✓", "promise met": "≈", "missed": "✗", "no data": "–"}


def render_html(report: dict) -> str:
    aims = {row["metric"]: row["aim_value"] for row in report["targets"] if row["metric"]}
    charts = {name: sparkline(summary["samples"], aim=aims.get(name))
              for name, summary in report["operations"].items()}
    return render_template("metrics.html", report=report, charts=charts, fmt=format_value,
                           summary=plain_summary(report),
                           ratio=format_ratio, uptime=format_uptime, unit_of=unit_of,
                           status_icons=STATUS_ICONS, window=WINDOW)


def plain_summary(report: dict) -> list[str]:
    """The page's first lines, for a person rather than a developer: how long answers and
    searches take on this computer, and whether every promise holds."""
    rows = {row["key"]: row for row in report["targets"]}
    lines = []
    answer = _figure(rows["chat_answer"])
    if answer:
        lines.append(f"Answers take {_seconds(answer[0])} on this computer ({answer[1]}).")
    search = _figure(rows["hybrid_search"]) or _figure(rows["search"])
    if search:
        lines.append(f"Searching your memories takes {format_value(search[0], 'ms')} "
                     f"({search[1]}).")
    promised = [row for row in report["targets"] if row["promise"] != "—"]
    missed = [row["operation"] for row in promised if _status(row) == "missed"]
    unknown = sum(_status(row) == "no data" for row in promised)
    if missed:
        measured = len(promised) - unknown
        lines.append(f"{measured - len(missed)} of {measured} measured promises met; "
                     f"not met: {'; '.join(missed)}.")
    elif unknown == len(promised):
        lines.append("Nothing is measured yet: use the chat, or run the benchmark.")
    else:
        lines.append(f"All promises met ({len(promised) - unknown} of {len(promised)} "
                     "measured" + (f"; {unknown} not yet" if unknown else "") + ").")
    return lines


def _figure(row: dict) -> tuple[float, str] | None:
    """A target's figure and where it comes from: this server's own samples first, else the
    last benchmark run's."""
    if row["samples"]:
        count = row["samples"]
        return row["p50"], f"median of the last {count:,} since start" if count > 1 else \
            "the one since start"
    bench = row["benchmark"]
    if bench and bench.get("p50") is not None:
        return bench["p50"], "measured by the last benchmark"
    return None


def _status(row: dict) -> str:
    if row["metric"] and row["samples"]:
        return row["status"]
    return row["benchmark"]["status"] if row["benchmark"] else "no data"


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.1f} s" if ms >= 100 else f"{ms:.0f} ms"


def sparkline(samples: list[float], *, aim: float | None = None) -> dict:
    """Polyline points for `samples` (oldest left), scaled from 0 (or the lowest sample, if
    negative) to the highest; `aim_y` places the aim's line when it falls on the chart."""
    low = min(0.0, *samples)
    high = max(samples)
    span = (high - low) or 1.0
    inner = SPARK_HEIGHT - 2 * SPARK_PAD

    def y(value: float) -> float:
        return round(SPARK_HEIGHT - SPARK_PAD - (value - low) / span * inner, 2)

    step = SPARK_WIDTH / (len(samples) - 1) if len(samples) > 1 else 0.0
    points = [(round(index * step, 2), y(value)) for index, value in enumerate(samples)]
    if len(points) == 1:  # one sample: a flat line, so there is something to see
        points.append((float(SPARK_WIDTH), points[0][1]))
    return {"width": SPARK_WIDTH, "height": SPARK_HEIGHT,
            "points": " ".join(f"{px},{py}" for px, py in points),
            "last": points[-1],
            "aim_y": y(aim) if aim is not None and low <= aim <= high else None}


def format_uptime(seconds: float) -> str:
    minutes, hours = int(seconds // 60), int(seconds // 3600)
    if hours >= 24:
        return f"{hours // 24} d {hours % 24} h"
    if hours:
        return f"{hours} h {minutes % 60} min"
    return f"{minutes} min" if minutes else f"{seconds:.0f} s"


def format_ratio(ratio: float) -> str:
    """Lumara's time over the raw library's: "1.1×", or "39× faster" when far below 1."""
    return f"{1 / ratio:,.0f}× faster than" if 0 < ratio < 0.1 else f"{ratio:.2g}× vs"


def unit_of(operation: str) -> str:
    if operation.endswith(("_ms", ".ms")):
        return "ms"
    if operation.endswith("_mb"):
        return "MB"
    if operation.endswith("tokens_per_s"):
        return "tokens/s"
    return ""


def format_value(value: float | None, unit: str = "") -> str:
    """A figure for people: "—" for none, seconds above 1,000 ms, 3 significant digits
    for small values."""
    if value is None:
        return "—"
    if unit == "ms" and value >= 1000:
        return f"{value / 1000:.2f} s"
    if unit == "%":
        return f"{value * 100:.1f} %"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 1:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


# -- Prometheus -------------------------------------------------------------------------
# Counters that only grow; every other number in the counters section is a gauge.
_GAUGE_FIELDS = {"memo_size", "states", "bytes", "reuse_rate"}


def metric_name(*parts: str) -> str:
    return "lumara_" + "_".join(re.sub(r"[^a-zA-Z0-9_]", "_", part) for part in parts)


class ReportCollector:
    """Turns one report into Prometheus families (registered on a private registry per
    request: the report is the single source, nothing is kept between scrapes)."""

    def __init__(self, report: dict):
        self.report = report

    def collect(self) -> Iterator[Metric]:
        report = self.report
        seen: set[str] = set()

        def once(family: Metric) -> Iterator[Metric]:
            # Skip a figure with no value yet (a rate before the first embedding) and a name
            # already given (the monitor may count what a service also counts).
            if family.samples and family.name not in seen:
                seen.add(family.name)
                yield family

        for operation, summary in report["operations"].items():
            family = SummaryMetricFamily(
                metric_name(operation),
                f"{operation}: quantiles over the last {summary['window']} samples")
            for quantile, field in QUANTILES:
                family.add_sample(family.name, {"quantile": quantile}, summary[field])
            family.add_metric([], summary["count"], summary["total"])
            yield from once(family)

        yield from once(_gauge("process_uptime_seconds", "Seconds since the process started",
                               report["process"]["uptime_s"]))
        yield from once(_gauge("process_resident_memory_mb", "Resident memory now, MiB",
                               report["process"]["rss_mb"]))
        yield from once(_gauge("memories", "Memories stored", report["memories"]))
        for name, rate in report["hit_rates"].items():
            yield from once(_gauge(name, f"{name.replace('_', ' ')} (0 to 1)", rate))

        for group, counters in report["counters"].items():
            prefix = () if group == "monitor" else (group,)
            for name, value in (counters or {}).items():
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                full = metric_name(*prefix, name)
                if name in _GAUGE_FIELDS:
                    family = GaugeMetricFamily(full, f"{group} {name}", value=value)
                else:
                    family = CounterMetricFamily(full, f"{group} {name}", value=value)
                yield from once(family)

        values = GaugeMetricFamily(metric_name("target_value"),
                                   "The live figure each target's aim is about",
                                   labels=["target", "statistic"])
        aims = GaugeMetricFamily(metric_name("target_aim"), "Each target's aim",
                                 labels=["target"])
        statuses = GaugeMetricFamily(metric_name("target_status"),
                                     "1 for each target's current status, 0 for the others",
                                     labels=["target", "status"])
        for row in report["targets"]:
            if row["value"] is not None:
                values.add_metric([row["key"], row["statistic"]], row["value"])
            aims.add_metric([row["key"]], row["aim_value"])
            for status in STATUSES:
                statuses.add_metric([row["key"], status], float(row["status"] == status))
        for family in (values, aims, statuses):
            yield from once(family)


def _gauge(name: str, documentation: str, value: Any) -> GaugeMetricFamily:
    family = GaugeMetricFamily(metric_name(name), documentation)
    if value is not None:
        family.add_metric([], value)
    return family


def prometheus_text(report: dict) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReportCollector(report))
    return generate_latest(registry)
