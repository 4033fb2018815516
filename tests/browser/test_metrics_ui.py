"""The performance page in a real browser: the main page reports its own load time, and
/metrics shows the target table and charts with no script and no console errors."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from lumara_web.observability.targets import TARGETS

from .ui import by, eventually


def page_loads(site) -> dict | None:
    return site.api.get("/metrics.json")["operations"].get("page.load_ms")


def test_opening_the_main_page_reports_its_load_time(site, page):
    assert page_loads(site) is None
    site.open(page)

    def reported():
        summary = page_loads(site)
        assert summary is not None, "no page.load_ms sample yet"
        assert summary["count"] == 1
        assert 0 < summary["last"] <= 600_000

    eventually(reported, "the page-load beacon")
    assert page.console_errors == []


def test_the_metrics_page_shows_targets_charts_and_counters(site, page):
    for value in (4.0, 6.0, 5.0):
        site.services.monitor.record("embedding.computed_ms", value)
    site.open(page)
    eventually(lambda: page_loads(site) is not None, "the page-load beacon")

    by(page, "metrics-link").click()
    expect(page).to_have_url(re.compile(r"/metrics$"))
    expect(by(page, "metrics-targets")).to_be_visible()
    expect(by(page, "metrics-target")).to_have_count(len(TARGETS))
    for target in TARGETS:
        expect(by(page, "metrics-targets")).to_contain_text(target.operation)

    row = page.locator("[data-testid='metrics-target'][data-key='embedding_single']")
    expect(by(row, "metrics-status")).to_have_text(re.compile(r"\bmet\b"))
    expect(row).to_contain_text("5.0 ms")  # the live p50
    no_samples = page.locator("[data-testid='metrics-target'][data-key='chat_ttft']")
    expect(by(no_samples, "metrics-status")).to_contain_text("no data")

    for operation in ("embedding.computed_ms", "page.load_ms", "api.request_ms"):
        chart = page.locator(f"[data-testid='metrics-chart'][data-operation='{operation}']")
        expect(chart.locator("svg polyline")).to_have_count(1)
        box = chart.locator("svg").bounding_box()
        assert box["width"] > 100 and box["height"] > 20  # drawn at a readable size
    expect(by(page, "metrics-counters")).to_contain_text("Embedding hit rate")
    assert page.evaluate("document.scripts.length") == 0
    assert page.console_errors == []

    by(page, "metrics-back").click()
    expect(by(page, "chat-input")).to_be_visible()


@pytest.mark.parametrize("context_options", [{"viewport": {"width": 600, "height": 900},
                                              "color_scheme": "dark"}])
def test_the_metrics_page_fits_a_narrow_dark_screen(site, page):
    page.goto(site.server.base + "/metrics")
    expect(by(page, "metrics-targets")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 600
    # The page scrolls as a document (the chat page's fixed layout does not apply here).
    assert page.evaluate("getComputedStyle(document.body).overflowY") != "hidden"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    red, green, blue = map(int, re.findall(r"\d+", background)[:3])
    assert red + green + blue < 3 * 64, background  # the dark theme
    assert page.console_errors == []


@pytest.mark.parametrize("context_options", [{"viewport": {"width": 390, "height": 844},
                                              "is_mobile": True, "has_touch": True}])
def test_the_metrics_page_leads_with_a_plain_summary_and_fits_a_phone(site, page):
    for total_ms in (380.0, 420.0, 400.0):
        site.services.monitor.record("chat.total_ms", total_ms)
    site.services.monitor.record("search.hybrid_ms", 2.0)
    page.goto(site.server.base + "/metrics")
    summary = by(page, "metrics-summary")
    expect(summary).to_contain_text("Answers take 0.4 s on this computer "
                                    "(median of the last 3 since start).")
    expect(summary).to_contain_text("Searching your memories takes 2.0 ms (the one since start).")
    expect(summary).to_contain_text(re.compile(r"promises met"))
    # The summary comes before the developer table.
    assert summary.bounding_box()["y"] < by(page, "metrics-targets").bounding_box()["y"]
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.console_errors == []
