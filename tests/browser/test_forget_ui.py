"""Forgetting from the chat in a real browser: "Forget that …" lists the memories it may mean
under the answer, deletes one only when its Forget button is pressed, and the toast's Undo
brings it back."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .ui import ask, by, eventually, memory_item

LOCKER = "My locker code is 4471."
OIL = "The car needs an oil change every 15,000 kilometres."

# [r, g, b, a] of a computed colour, painted on a canvas to read it back (any CSS syntax).
COLOURS = """([text, ground]) => {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 1;
  const paint = canvas.getContext("2d", {willReadFrequently: true});
  const rgba = (css) => {
    paint.clearRect(0, 0, 1, 1);
    paint.fillStyle = css;
    paint.fillRect(0, 0, 1, 1);
    return [...paint.getImageData(0, 0, 1, 1).data];
  };
  return [rgba(getComputedStyle(text).color), rgba(getComputedStyle(ground).backgroundColor)];
}"""


def contrast(text, ground) -> float:
    """WCAG contrast ratio of two opaque colours."""
    def luminance(rgba):
        channels = [c / 255 for c in rgba[:3]]
        r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
                   for c in channels]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    light, dark = sorted((luminance(text), luminance(ground)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def is_stored(site, memory_id: int) -> bool:
    status, _ = site.api.request("GET", f"/api/memories/{memory_id}")
    assert status in (200, 404), status
    return status == 200


def test_forget_offers_the_memory_and_deletes_it_only_on_the_button(site, page):
    memory = site.api.add_memory(LOCKER)
    other = site.api.add_memory(OIL)
    site.open(page)
    answer = ask(page, "Forget that my locker code is 4471")

    expect(by(answer, "message-body")).to_contain_text("nothing is deleted until you do")
    note = by(answer, "forget-note")
    item = by(note, "forget-item")
    expect(item).to_have_count(1)  # the oil change shares no word with the request
    expect(item).to_contain_text(LOCKER)
    expect(by(item, "forget-link")).to_have_attribute("href", f"#memory-{memory['id']}")
    # Offered, not deleted: the server and the memory list still have it.
    assert is_stored(site, memory["id"])
    expect(memory_item(page, memory["id"])).to_be_visible()

    # Keyboard: Tab from the memory's link reaches its Forget button, focus ring showing.
    button = note.get_by_role("button", name=f"Forget: {LOCKER}")
    by(item, "forget-link").focus()
    page.keyboard.press("Tab")
    expect(button).to_be_focused()
    assert button.evaluate("(b) => getComputedStyle(b).outlineStyle") == "solid"
    page.keyboard.press("Enter")

    expect(item).to_have_attribute("data-state", "forgotten")
    expect(button).to_be_hidden()
    expect(by(item, "forget-done")).to_be_focused()  # the keyboard keeps its place
    expect(memory_item(page, memory["id"])).to_have_count(0)
    eventually(lambda: not is_stored(site, memory["id"]))
    assert [m["id"] for m in site.api.get("/api/trash")["items"]] == [memory["id"]]
    assert is_stored(site, other["id"])

    toast = by(page, "toast").filter(has_text="Forgotten")
    expect(toast).to_contain_text(LOCKER)
    by(toast, "toast-undo").click()

    expect(item).to_have_attribute("data-state", "offered")
    expect(button).to_be_visible()
    expect(button).to_be_focused()  # where the toast's vanished Undo sends the focus
    expect(memory_item(page, memory["id"])).to_be_visible()
    eventually(lambda: is_stored(site, memory["id"]))
    assert site.api.get("/api/trash")["total"] == 0


def test_a_request_matching_no_memory_offers_nothing(site, page):
    memory = site.api.add_memory(LOCKER)
    site.open(page)
    answer = ask(page, "Please forget the plumber appointment")

    expect(by(answer, "message-body")).to_contain_text("nothing to forget")
    expect(by(page, "forget-note")).to_have_count(0)
    expect(by(page, "forget-button")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile(r"^Forget\b"))).to_have_count(0)
    assert is_stored(site, memory["id"])


@pytest.mark.parametrize("context_options", [{"color_scheme": "dark"},
                                             {"color_scheme": "light"}],
                         ids=["dark", "light"])
def test_the_forget_note_is_readable_in_both_colour_schemes(site, page):
    site.api.add_memory(LOCKER)
    site.open(page)
    answer = ask(page, "Delete the memory about my locker code")
    note = by(answer, "forget-note")
    item = by(note, "forget-item")
    expect(item).to_have_count(1)

    for text, ground in ((item.locator(".receipt-text"), note),
                         (by(item, "forget-button"), by(item, "forget-button"))):
        colours = page.evaluate(COLOURS, [text.element_handle(), ground.element_handle()])
        assert contrast(*colours) >= 4.5, colours
    by(item, "forget-button").click()
    done = by(item, "forget-done")
    expect(done).to_be_visible()
    colours = page.evaluate(COLOURS, [done.element_handle(), note.element_handle()])
    assert contrast(*colours) >= 4.5, colours
