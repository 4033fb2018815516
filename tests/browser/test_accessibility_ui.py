"""Accessibility in a real browser: axe-core finds no violation, of any impact, on any view or
dialog — light and dark, desktop and phone. With LUMARA_SCREENSHOTS=<folder> set, each view
is also saved as a PNG there — the whole screen, or just the dialog or panel the view is about
(docs/screenshots holds the README's: `LUMARA_SCREENSHOTS=docs/screenshots pytest
tests/browser/test_accessibility_ui.py -k "not phone-dark"`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .axe import describe, violations
from .ui import ask, by, memory_item

LISBON = "My sister Ana lives in Lisbon."
MADRID = "My sister Ana lives in Madrid."
REX = "My dog is called Rex."
TRIP = "Last June we walked the Camino from Porto to Santiago in twelve days."
BREW = "To make cold brew I steep coarse coffee in water for 16 hours."
OIL = "The car needs an oil change every 15,000 kilometres."

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
LAYOUTS = {
    "desktop-light": {"viewport": DESKTOP, "color_scheme": "light"},
    "desktop-dark": {"viewport": DESKTOP, "color_scheme": "dark"},
    "phone-light": {"viewport": PHONE, "color_scheme": "light", "is_mobile": True,
                    "has_touch": True},
    "phone-dark": {"viewport": PHONE, "color_scheme": "dark", "is_mobile": True,
                   "has_touch": True},
}


@pytest.fixture(params=list(LAYOUTS))
def layout(request):
    return request.param


@pytest.fixture
def context_options(layout):
    # bypass_csp lets the test inject axe.min.js; the app's own CSP is checked below.
    return {**LAYOUTS[layout], "bypass_csp": True}


class Audit:
    """Runs axe on each view in turn and keeps what it found; saves screenshots if asked."""

    def __init__(self, page, layout: str):
        self.page = page
        self.layout = layout
        self.found: dict[str, list[dict]] = {}
        folder = os.environ.get("LUMARA_SCREENSHOTS")
        self.folder = Path(folder) if folder else None

    def check(self, view: str, shot=None) -> None:
        """Run axe on the page; save `shot` (a locator; None: the screen; False: nothing)."""
        self.page.evaluate("document.getAnimations().forEach((a) => a.finish())")
        self.found[view] = violations(self.page)
        if self.folder and shot is not False:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = str(self.folder / f"{view}-{self.layout}.png")
            (shot or self.page).screenshot(path=path)

    def report(self) -> str:
        return "\n".join(f"[{view}]\n{describe(found)}" for view, found in self.found.items()
                         if found)


def show(page, tab: str, phone: bool) -> None:
    if phone:
        by(page, f"view-toggle-{tab}").click()
        expect(by(page, f"view-toggle-{tab}")).to_have_attribute("aria-pressed", "true")


def test_axe_finds_no_violation_on_any_view(site, page, layout):
    phone = layout.startswith("phone")
    api = site.api
    lisbon = api.add_memory(LISBON, tags=["family"])
    api.add_memory(TRIP, type="experience", tags=["travel"])
    api.add_memory(BREW, type="method", tags=["coffee"])
    edited = api.add_memory("The car needs an oil change every 10,000 kilometres.")
    api.request("PATCH", f"/api/memories/{edited['id']}", {"content": OIL})
    gone = api.add_memory("My locker code is 4471.")
    api.request("DELETE", f"/api/memories/{gone['id']}")
    site.engine.enqueue({"content": REX, "tags": ["pets"]}, "extract")

    response = page.goto(site.url)
    assert "'unsafe-inline'" not in response.headers["content-security-policy"].split(
        "script-src")[-1].split(";")[0]
    site.open(page)
    audit = Audit(page, layout)
    ask(page, "I think my dog is called Rex.")  # an answer, and a suggestion to review
    ask(page, "What do you know about my sister?")
    audit.check("chat")

    show(page, "memories", phone)
    expect(by(page, "suggestion-item")).to_have_count(1)
    audit.check("memories", None if phone else False)  # on a desktop, the chat view

    by(memory_item(page, edited["id"]), "memory-history").click()
    dialog = by(page, "history-dialog")
    expect(by(dialog, "history-version")).to_have_count(1)
    audit.check("history", dialog)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    by(page, "trash-toggle").click()
    expect(by(page, "trash-item")).to_have_count(1)
    audit.check("trash", by(page, "trash-view"))
    by(page, "trash-close").click()

    by(memory_item(page, lisbon["id"]), "memory-delete").click()
    by(by(page, "confirm-dialog"), "confirm-ok").click()
    expect(by(page, "toast-undo")).to_be_visible()
    audit.check("toast", by(page, "toast"))
    by(page, "toast-undo").click()
    expect(memory_item(page, lisbon["id"])).to_be_visible()

    by(page, "data-open").click()
    expect(by(page, "data-panel")).to_be_visible()
    audit.check("data", by(page, "data-panel"))
    page.keyboard.press("Escape")
    expect(by(page, "data-panel")).to_be_hidden()

    show(page, "chat", phone)
    site.engine.enqueue({"content": MADRID, "tags": ["family"]}, "extract")
    ask(page, MADRID)
    expect(by(page, "contradiction-dialog")).to_be_visible()
    audit.check("contradiction", by(page, "contradiction-dialog"))
    page.keyboard.press("Escape")
    expect(by(page, "contradiction-dialog")).to_be_hidden()

    page.goto(site.server.base + "/metrics")
    expect(page.locator("h1")).to_be_visible()
    audit.check("metrics")

    assert not audit.report(), "axe found violations:\n" + audit.report()
