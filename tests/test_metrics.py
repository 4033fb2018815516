"""/metrics, /metrics.json and the Prometheus text: one report rendered three ways, checked
against the app's own PerfMonitor; the request timing hooks and the page-load beacon."""

from __future__ import annotations

import html
import json
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lumara_web.observability import metrics_report, perf
from lumara_web.observability.metrics_report import embedding_hit_rate, load_benchmarks
from lumara_web.observability.targets import TARGETS, Target

from .helpers import GatedEngine, request, started, wait_idle, wait_until

# Known samples for a few targets, chosen to give each status.
RECORDED = {
    "embedding.computed_ms": [4.0, 6.0, 5.0, 30.0, 7.0],  # median 6 ≤ 10: met
    "chat.total_ms": [1500.0, 1700.0, 1600.0],  # avg 1600 ≤ 2000 but > 1200: promise met
    "chat.ttft_ms": [900.0, 1100.0],  # median 1000 > 300, no promise: missed
}
EXPECTED_STATUS = {"embedding_single": "met", "chat_answer": "promise met",
                   "chat_ttft": "missed"}
PROMETHEUS_ACCEPT = "application/openmetrics-text;version=1.0.0;q=0.5," \
                    "text/plain;version=0.0.4;q=0.4,*/*;q=0.1"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
def monitor(app):
    """The app's monitor, once start-up has recorded its own samples (a background thread
    that would otherwise add them in the middle of a test)."""
    services = app.extensions["lumara"]
    wait_until(lambda: services.monitor.summary("startup.first_setup_ms") is not None,
               what="start-up to be recorded")
    return services.monitor


@pytest.fixture
def recorded(monitor):
    for operation, values in RECORDED.items():
        for value in values:
            monitor.record(operation, value)
    return monitor


@pytest.fixture
def no_benchmarks(monkeypatch, tmp_path):
    monkeypatch.setattr(metrics_report, "BENCHMARKS_PATH", tmp_path / "missing.json")


def get_json(client, path="/metrics.json") -> dict:
    response = client.get(path)
    assert response.status_code == 200, response.data[:500]
    return response.get_json()


def target_rows(report: dict) -> dict[str, dict]:
    return {row["key"]: row for row in report["targets"]}


def row_html(page: str, key: str) -> str:
    match = re.search(rf'<tr data-testid="metrics-target" data-key="{key}".*?</tr>', page,
                      re.DOTALL)
    assert match, f"no table row for {key}"
    return match.group(0)


# -- the JSON report --------------------------------------------------------------------
def test_json_targets_match_the_monitors_summaries(client, recorded, no_benchmarks):
    report = get_json(client)
    rows = target_rows(report)
    assert [row["key"] for row in report["targets"]] == [target.key for target in TARGETS]
    for target in TARGETS:
        row = rows[target.key]
        assert (row["operation"], row["promise"], row["aim"], row["statistic"], row["unit"]) \
            == (target.operation, target.promise, target.aim, target.statistic, target.unit)
        summary = recorded.summary(target.metric) if target.metric else None
        if target.metric in RECORDED:
            assert row["value"] == getattr(summary, target.statistic)
            assert row["p50"] == summary.median
            assert row["p95"] == summary.p95
            assert row["samples"] == len(RECORDED[target.metric])
        if summary is None:
            assert (row["value"], row["p50"], row["p95"]) == (None, None, None)
        assert row["status"] == target.status(row["value"])
        assert row["benchmark"] is None
    for key, status in EXPECTED_STATUS.items():
        assert rows[key]["status"] == status
    assert rows["search_100k"]["status"] == "no data"  # measured by the benchmark only


def test_json_operations_are_the_full_summaries(client, recorded, no_benchmarks):
    report = get_json(client)
    for operation in RECORDED:
        summary = recorded.summary(operation)
        assert report["operations"][operation] == {**summary.to_dict(), "total": summary.total}
        assert report["operations"][operation]["samples"] == RECORDED[operation]
    # /metrics?format=json is the same report.
    again = get_json(client, "/metrics?format=json")
    assert again["operations"]["chat.total_ms"] == report["operations"]["chat.total_ms"]


def test_json_reports_counters_hit_rates_memories_uptime_and_fresh_rss(client, monitor,
                                                                       no_benchmarks):
    content = "my sister ana lives in lisbon"
    assert client.post("/api/memories", json={"content": content}).status_code == 201
    for _ in range(2):
        assert client.get("/api/memories/search", query_string={"q": content}).status_code \
            == 200
    rss_before = monitor.summary("process.rss_mb")

    report = get_json(client)

    counters = client.application.extensions["lumara"].embeddings.status()["counters"]
    assert report["counters"]["embedding"] == counters
    hits = counters["memo_hits"] + counters["cache_hits"]
    assert hits > 0 and counters["computed"] > 0
    assert report["hit_rates"]["embedding_hit_rate"] == pytest.approx(
        hits / (hits + counters["computed"]), abs=1e-4)
    assert report["counters"]["prompt_cache"] is None  # fake engines keep no prompt cache
    assert report["hit_rates"]["prompt_cache_reuse_rate"] is None
    assert report["memories"] == 1
    assert report["process"]["uptime_s"] >= 0
    rss = monitor.summary("process.rss_mb")
    assert report["process"]["rss_mb"] > 0
    assert rss.last == report["process"]["rss_mb"]  # sampled when the report was built
    assert rss.count > (rss_before.count if rss_before else 0)


def test_embedding_hit_rate():
    assert embedding_hit_rate({}) is None
    assert embedding_hit_rate({"memo_hits": 0, "cache_hits": 0, "computed": 0}) is None
    assert embedding_hit_rate({"memo_hits": 2, "cache_hits": 1, "computed": 1}) == 0.75


@pytest.mark.parametrize("value, status", [
    (None, "no data"), (0.0, "met"), (10.0, "met"), (10.5, "promise met"), (100.0, "promise met"),
    (100.5, "missed")])
def test_target_status(value, status):
    target = Target("x", "X", "< 100 ms", "≤ 10 ms", "x_ms", "median", 10, 100, "ms")
    assert target.status(value) == status


def test_a_target_without_a_numeric_promise_is_met_or_missed():
    target = Target("x", "X", "—", "≤ 300 ms", "x_ms", "median", 300, None, "ms")
    assert [target.status(value) for value in (300, 301)] == ["met", "missed"]


# -- the HTML page ----------------------------------------------------------------------
def test_html_shows_every_target_with_its_status_in_words(client, recorded, no_benchmarks):
    response = client.get("/metrics", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    statuses = {row["key"]: row["status"] for row in get_json(client)["targets"]}
    for target in TARGETS:
        row = row_html(page, target.key)
        assert target.operation in html.unescape(row)
        status = statuses[target.key]
        assert f'data-status="{status}"' in row
        # In words, not only as a colour class.
        assert re.search(rf"</span>\s*{re.escape(status)}\b", row), row
        assert f"status-{status.replace(' ', '-')}" in row
    assert "6.0 ms" in row_html(page, "embedding_single")  # the live p50


def test_html_draws_an_svg_chart_per_recorded_operation(client, recorded, no_benchmarks):
    page = client.get("/metrics").get_data(as_text=True)
    charts = re.findall(r'<li class="chart" data-testid="metrics-chart" '
                        r'data-operation="([^"]+)">(.*?)</li>', page, re.DOTALL)
    drawn = {operation: body for operation, body in charts}
    assert set(drawn) == set(recorded.summaries())
    for operation in recorded.summaries():
        assert "<svg" in drawn[operation] and "<polyline" in drawn[operation]
    points = re.search(r'points="([^"]+)"', drawn["embedding.computed_ms"]).group(1).split()
    assert len(points) == len(RECORDED["embedding.computed_ms"])


def test_html_needs_no_script_inline_style_or_outside_asset(client, recorded, no_benchmarks):
    page = client.get("/metrics").get_data(as_text=True)
    assert "<script" not in page
    assert "style=" not in page and "<style" not in page
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)
    assert 'href="/static/metrics.css"' in page
    with client.get("/static/metrics.css") as stylesheet:
        assert stylesheet.status_code == 200


def test_html_renders_before_anything_is_measured(client, no_benchmarks):
    page = client.get("/metrics").get_data(as_text=True)
    assert page.count('data-testid="metrics-target"') == len(TARGETS)


# -- Prometheus -------------------------------------------------------------------------
def prometheus(client, **kwargs) -> dict:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return {family.name: family
            for family in text_string_to_metric_families(response.get_data(as_text=True))}


def sample_values(family) -> dict[tuple, float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for sample in family.samples}


def test_prometheus_text_parses_and_matches_the_monitor(client, recorded, no_benchmarks):
    families = prometheus(client, query_string={"format": "prometheus"})
    for operation in RECORDED:
        summary = recorded.summary(operation)
        name = "lumara_" + operation.replace(".", "_")
        assert families[name].type == "summary"
        values = sample_values(families[name])
        assert values[(name, (("quantile", "0.5"),))] == pytest.approx(summary.median)
        assert values[(name, (("quantile", "0.95"),))] == pytest.approx(summary.p95)
        assert values[(name, (("quantile", "0.99"),))] == pytest.approx(summary.p99)
        assert values[(name + "_count", ())] == summary.count
        assert values[(name + "_sum", ())] == pytest.approx(summary.total)

    status = sample_values(families["lumara_target_status"])
    for key, expected in EXPECTED_STATUS.items():
        assert status[("lumara_target_status", (("status", expected), ("target", key)))] == 1
        assert status[("lumara_target_status", (("status", "no data"), ("target", key)))] == 0
    assert status[("lumara_target_status", (("status", "no data"), ("target", "search_1m")))] \
        == 1
    value = sample_values(families["lumara_target_value"])
    assert value[("lumara_target_value", (("statistic", "avg"), ("target", "chat_answer")))] \
        == pytest.approx(recorded.summary("chat.total_ms").avg)

    counters = client.application.extensions["lumara"].embeddings.status()["counters"]
    assert families["lumara_embedding_computed"].type == "counter"
    assert sample_values(families["lumara_embedding_computed"]) == {
        ("lumara_embedding_computed_total", ()): counters["computed"]}
    assert families["lumara_memories"].samples[0].value == 0


@pytest.mark.parametrize("accept, query, mimetype", [
    (PROMETHEUS_ACCEPT, {}, "text/plain"),
    ("text/plain", {}, "text/plain"),
    (BROWSER_ACCEPT, {}, "text/html"),
    ("*/*", {}, "text/html"),
    (None, {}, "text/html"),
    ("text/plain, text/html", {}, "text/html"),  # a tie goes to people
    (BROWSER_ACCEPT, {"format": "prometheus"}, "text/plain"),
    (PROMETHEUS_ACCEPT, {"format": "html"}, "text/html"),
    (BROWSER_ACCEPT, {"format": "json"}, "application/json"),
])
def test_accept_negotiation(client, accept, query, mimetype, no_benchmarks):
    headers = {"Accept": accept} if accept else {}
    response = client.get("/metrics", headers=headers, query_string=query)
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert "Accept" in response.vary


def test_an_unknown_format_is_refused(client, no_benchmarks):
    response = client.get("/metrics", query_string={"format": "xml"})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_format"
    assert "xml" in error["message"] and "prometheus" in error["message"]


# -- request timing ---------------------------------------------------------------------
def count(monitor, operation: str) -> int:
    summary = monitor.summary(operation)
    return summary.count if summary else 0


def test_api_requests_are_timed(client, monitor, no_benchmarks):
    before = count(monitor, "api.request_ms")
    for _ in range(3):
        client.get("/api/memories")
    client.get("/api/memories/999999")  # an error response is timed too
    assert count(monitor, "api.request_ms") == before + 4
    client.get("/health")
    client.get("/metrics.json")
    client.get("/")
    assert count(monitor, "api.request_ms") == before + 4  # pages are not API requests
    assert monitor.summary("api.request_ms").last >= 0
    assert count(monitor, "api.busy_request_ms") == 0  # nothing was generating


@pytest.fixture
def gated_app(make_app):
    engine = GatedEngine()
    app = make_app(engine=engine)
    yield app, engine
    engine.open()


def test_api_requests_during_a_generation_are_timed_as_busy(gated_app):
    app, engine = gated_app
    monitor, client = app.extensions["lumara"].monitor, app.test_client()
    job = engine.submit(request("tell me a long story"))
    started(job)  # the worker is generating, held at its first token
    client.get("/api/memories")
    client.get("/api/memories")
    assert count(monitor, "api.busy_request_ms") == 2
    engine.open()
    assert job.finished.wait(10)
    wait_idle(engine)
    busy_before, all_before = count(monitor, "api.busy_request_ms"), count(monitor,
                                                                           "api.request_ms")
    client.get("/api/memories")
    assert count(monitor, "api.request_ms") == all_before + 1
    assert count(monitor, "api.busy_request_ms") == busy_before


# -- the page-load beacon ---------------------------------------------------------------
@pytest.mark.parametrize("ms", [0, 1234.5, 600_000])
def test_page_load_records_a_good_value(client, monitor, ms):
    response = client.post("/api/metrics/page-load", json={"ms": ms})
    assert response.status_code == 200, response.get_json()
    assert monitor.summary("page.load_ms").samples == (float(ms),)


@pytest.mark.parametrize("body, code", [
    ({"ms": -1}, "invalid_ms"),
    ({"ms": 600_000.5}, "invalid_ms"),
    ({"ms": 10**400}, "invalid_ms"),
    ({"ms": "100"}, "invalid_ms"),
    ({"ms": True}, "invalid_ms"),
    ({"ms": None}, "invalid_ms"),
    ({"ms": [100]}, "invalid_ms"),
    ({}, "invalid_ms"),
    ({"ms": 100, "page": "/"}, "unknown_field"),
    ([100], "invalid_body"),
])
def test_page_load_refuses_bad_values(client, monitor, body, code):
    response = client.post("/api/metrics/page-load", json=body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert monitor.summary("page.load_ms") is None


@pytest.mark.parametrize("data, content_type, status, code", [
    (b'{"ms": 1e999}', "application/json", 400, "invalid_ms"),  # parses as infinity
    (b'{"ms": NaN}', "application/json", 400, "invalid_json"),
    (b"{not json", "application/json", 400, "invalid_json"),
    (b'{"ms": 100}', "text/plain", 415, "unsupported_media_type"),
])
def test_page_load_refuses_bad_bodies(client, monitor, data, content_type, status, code):
    response = client.post("/api/metrics/page-load", data=data, content_type=content_type)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    assert monitor.summary("page.load_ms") is None


def test_page_load_takes_only_post(client):
    response = client.get("/api/metrics/page-load")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"


# -- the last benchmark -----------------------------------------------------------------
BENCHMARKS = {
    "generated": "2026-01-02T03:04:05+00:00",
    "machine": {"cpu": "Test CPU", "cores": 2},
    "rows": [
        {"key": "embedding_single", "label": "Embedding, warm, single", "ours_p50": 4.4,
         "ours_p95": 6.5, "raw_p50": 9.0, "raw": "sentence-transformers", "ratio": 2.1,
         "unit": "ms"},
        {"key": "search_100k", "label": "Search 100k", "ours_p50": 3.0, "ours_p95": 4.0,
         "raw_p50": 30.0, "raw": "numpy", "ratio": 10.0, "recall": 0.97, "unit": "ms"},
        {"key": "not_a_target", "label": "Other", "ours_p50": 1.0, "ours_p95": 2.0,
         "raw_p50": 1.0, "raw": "x", "ratio": 1.0, "unit": "ms"},
    ],
}


def test_the_last_benchmark_shows_beside_its_target(client, monitor, monkeypatch, tmp_path):
    path = tmp_path / "benchmarks.json"
    path.write_text(json.dumps(BENCHMARKS))
    monkeypatch.setattr(metrics_report, "BENCHMARKS_PATH", path)
    report = get_json(client)
    rows = target_rows(report)
    assert rows["embedding_single"]["benchmark"] == {
        "p50": 4.4, "p95": 6.5, "raw_p50": 9.0, "ratio": 2.1, "recall": None,
        "label": "Embedding, warm, single", "raw": "sentence-transformers", "unit": "ms",
        "status": "met"}
    assert rows["search_100k"]["benchmark"]["recall"] == 0.97
    assert rows["search_100k"]["benchmark"]["status"] == "met"
    assert rows["chat_answer"]["benchmark"] is None
    assert report["benchmark"]["generated"] == BENCHMARKS["generated"]
    assert report["benchmark"]["machine"] == BENCHMARKS["machine"]

    page = client.get("/metrics").get_data(as_text=True)
    assert "4.4 ms / 6.5 ms" in row_html(page, "embedding_single")
    search_row = html.unescape(row_html(page, "search_100k"))
    assert "met" in search_row and "(benchmark)" in search_row
    assert "Test CPU" in page


@pytest.mark.parametrize("content", [
    None,  # no file
    b"",
    b"{not json",
    b"\xff\xfe\x00",
    b"[]",
    b'{"rows": "none"}',
    b'{"rows": [1, null, {"key": 5}, {"label": "no key"}]}',
    b'{"generated": 5, "machine": [], "rows": [{"key": "embedding_single", '
    b'"ours_p50": "fast", "ours_p95": true, "ratio": null, "raw": 3}]}',
    b"[" * 100_000,  # nesting deep enough to break a recursive parser
], ids=["missing", "empty", "not-json", "not-utf8", "list", "rows-not-list", "bad-rows",
        "bad-fields", "deep"])
def test_a_missing_or_malformed_benchmark_file_shows_no_figures(client, monitor, monkeypatch,
                                                                tmp_path, content):
    path = tmp_path / "benchmarks.json"
    if content is not None:
        path.write_bytes(content)
    monkeypatch.setattr(metrics_report, "BENCHMARKS_PATH", path)
    report = get_json(client)
    for row in report["targets"]:
        bench = row["benchmark"] or {}
        assert all(bench.get(field) is None
                   for field in ("p50", "p95", "raw_p50", "ratio", "recall", "raw")), bench
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics?format=prometheus").status_code == 200


def test_load_benchmarks_takes_its_path_as_a_parameter(tmp_path):
    assert load_benchmarks(None) is None
    assert load_benchmarks(tmp_path / "nowhere.json") is None
    path = tmp_path / "b.json"
    path.write_text(json.dumps(BENCHMARKS))
    loaded = load_benchmarks(path)
    assert set(loaded["rows"]) == {"embedding_single", "search_100k", "not_a_target"}
    assert loaded["rows"]["search_100k"]["p50"] == 3.0


def test_benchmark_ratios_and_units_read_naturally():
    from lumara_web.web.metrics import format_ratio, unit_of

    assert format_ratio(1.13) == "1.1× vs"
    assert format_ratio(0.35) == "0.35× vs"
    assert format_ratio(1.45 / 56.35) == "39× faster than"
    assert unit_of("search.ms") == unit_of("chat.ttft_ms") == "ms"
    assert unit_of("process.rss_mb") == "MB"


def test_the_plain_summary_names_every_promise_that_is_not_met(app, monitor, monkeypatch):
    from lumara_web.web.metrics import plain_summary

    def summary() -> list[str]:
        return plain_summary(metrics_report.build_report(app.extensions["lumara"], 0,
                                                         benchmarks_path=None))

    # This test process's own start-up time and RSS are not the product's: pin them (the
    # report samples the RSS itself).
    monitor.record("startup.first_setup_ms", 5_000.0)
    monkeypatch.setattr(perf, "process_rss_mb", lambda pid="self": 300.0)
    before = summary()
    assert not any(line.startswith("Answers take") for line in before)
    assert before[-1].startswith("All promises met (")  # the pinned samples
    monitor.record("chat.total_ms", 3_500.0)  # over the 2 s promise
    after = summary()
    assert "Answers take 3.5 s on this computer (the one since start)." in after
    assert re.fullmatch(r"\d+ of \d+ measured promises met; not met: Chat, memory-grounded answer\.",
                        after[-1]), after[-1]
