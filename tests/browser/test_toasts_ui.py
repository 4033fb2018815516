"""Toasts in a real browser: one live region, a new toast replaces the one shown, and every
Undo button's accessible name says what it undoes."""

from __future__ import annotations

from playwright.sync_api import expect

from .ui import ask, by, delete_through_the_ui, eventually, memory_item

SISTER = "My sister Ana lives in Lisbon."
OIL = "The car needs an oil change every 15,000 kilometres."
TOMATOES = "I water the tomatoes every morning at 7."
REX = "My dog is called Rex."


def test_each_delete_replaces_the_toast_and_its_undo_names_the_memory(site, page):
    memories = [site.api.add_memory(text) for text in (SISTER, OIL, TOMATOES)]
    site.open(page)
    expect(page.locator("[aria-live]#toasts")).to_have_count(1)
    for memory in memories:
        delete_through_the_ui(page, memory["id"])
        expect(by(page, "toast")).to_have_count(1)  # the new one, never a pile
        expect(by(page, "toast-undo")).to_have_accessible_name(
            f"Undo: deleted “{memory['content']}”")

    by(page, "toast-undo").click()  # undoes the last delete, the one its name says
    expect(memory_item(page, memories[-1]["id"])).to_be_visible()
    eventually(lambda: site.api.contents() == [TOMATOES])
    expect(by(page, "toast")).to_have_count(1)
    expect(by(page, "toast")).to_contain_text("Memory restored")


def test_a_saved_memory_is_a_note_with_a_named_undo_and_no_toast(site, page):
    site.engine.enqueue({"content": REX, "tags": ["pets"]}, "extract")
    site.open(page)
    ask(page, REX)
    expect(by(page, "outcome-undo")).to_have_accessible_name(f"Undo: saved “{REX}”")
    expect(by(page, "toast")).to_have_count(0)  # the note under the answer says it

