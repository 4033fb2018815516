"""Layout and page state: the narrow-screen view toggle, the dark theme, the loading banner."""

from __future__ import annotations

import re
import threading

import pytest
from playwright.sync_api import expect

from lumara_web.inference.loading import BackgroundLoad

from ..fakes import FakeEmbedder
from .ui import by

# Any CSS colour (rgb, hex, oklch, …) → [r, g, b, a], painted on a canvas to read it back.
BACKGROUND = """() => {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 1;
  const paint = canvas.getContext("2d", {willReadFrequently: true});
  const rgba = (css) => {
    paint.clearRect(0, 0, 1, 1);
    paint.fillStyle = "rgba(0, 0, 0, 0)";
    paint.fillStyle = css;
    paint.fillRect(0, 0, 1, 1);
    return [...paint.getImageData(0, 0, 1, 1).data];
  };
  for (const el of [document.body, document.documentElement]) {
    const colour = rgba(getComputedStyle(el).backgroundColor);
    if (colour[3] > 0) return colour;
  }
  return null;
}"""


def luminance(rgba) -> float:
    r, g, b, _ = rgba
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


@pytest.mark.parametrize("context_options", [{"viewport": {"width": 600, "height": 900}}])
def test_at_600_px_the_toggles_switch_between_chat_and_memories(site, page):
    site.api.add_memory("My sister Ana lives in Lisbon.")
    page.goto(site.url)
    chat, memories = by(page, "view-toggle-chat"), by(page, "view-toggle-memories")
    expect(chat).to_be_visible()
    expect(memories).to_be_visible()

    memories.click()
    expect(by(page, "memory-search")).to_be_visible()
    expect(by(page, "memory-item")).to_be_visible()
    expect(by(page, "chat-input")).to_be_hidden()

    chat.click()
    expect(by(page, "chat-input")).to_be_visible()
    expect(by(page, "memory-search")).to_be_hidden()
    expect(by(page, "memory-item")).to_be_hidden()
    # Nothing spills sideways at this width.
    assert page.evaluate("document.documentElement.scrollWidth") <= 600


def test_at_desktop_width_both_panes_show_without_toggles(site, page):
    site.open(page)
    expect(by(page, "memory-search")).to_be_visible()
    expect(by(page, "chat-input")).to_be_visible()
    expect(by(page, "view-toggle-chat")).to_be_hidden()
    expect(by(page, "view-toggle-memories")).to_be_hidden()


@pytest.mark.parametrize("context_options, dark", [({"color_scheme": "dark"}, True),
                                                   ({"color_scheme": "light"}, False)],
                         ids=["dark", "light"])
def test_the_theme_follows_the_system_colour_scheme(site, page, dark):
    site.open(page)
    colour = page.evaluate(BACKGROUND)
    assert colour is not None, "neither body nor html has a background colour"
    if dark:
        assert luminance(colour) < 0.3, f"body background {colour} is not dark"
    else:
        assert luminance(colour) > 0.7, f"body background {colour} is not light"


def test_the_status_banner_shows_while_the_embedding_model_loads(lumara, page):
    site = lumara(model_wait_seconds=1)
    release = threading.Event()

    def slow_loader():
        assert release.wait(60), "the test never released the model"
        return FakeEmbedder()

    embeddings = site.services.embeddings  # the one service every part of the app uses
    embeddings.model = BackgroundLoad("embedding model", loader=slow_loader)
    embeddings.start_loading()
    try:
        assert site.api.get("/health")["embedder"]["state"] == "loading"
        site.open(page)
        banner = by(page, "status-banner")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text(re.compile(r"load|start|warm|wait|prepar", re.I))
    finally:
        release.set()
    assert embeddings.model.settle(10) and embeddings.state == "ready"
    expect(banner).to_be_hidden(timeout=20_000)  # the page polls /health
    # Ready means usable: a memory added now is listed.
    by(page, "memory-add-content").fill("My sister Ana lives in Lisbon.")
    by(page, "memory-add-submit").click()
    expect(by(page, "memory-item")).to_have_count(1)
