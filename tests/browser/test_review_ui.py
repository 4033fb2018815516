"""What the chat remembers, in a real browser: the saved-memory note with Undo, suggestions
to accept, edit or dismiss, and the contradiction dialog's three resolutions."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .ui import (
    ask,
    by,
    eventually,
    focus_is_inside,
    injected,
    memory_item,
    memory_items,
    wait_in_page,
)

REX = "My dog is called Rex."
LISBON = "My sister lives in Lisbon."
MADRID = "My sister lives in Madrid."


def suggestion_item(page, suggestion_id: int):
    return by(page, "suggestion-list").locator(
        f"[data-testid='suggestion-item'][data-id='{suggestion_id}']")


def suggestions(site, status: str = "all") -> list[dict]:
    return site.api.get(f"/api/suggestions?status={status}")["items"]


def test_a_saved_memory_shows_a_note_and_its_undo_removes_it(site, page):
    site.engine.enqueue({"content": REX, "tags": ["pets"]}, "extract")
    site.open(page)
    ask(page, REX)
    note = by(page, "outcome-note")
    expect(note).to_be_visible()
    expect(note).to_contain_text(f"Saved: “{REX}”")
    [saved] = site.api.memories()
    assert saved["content"] == REX and saved["source"] == "chat"
    expect(by(memory_item(page, saved["id"]), "memory-content")).to_have_text(REX)

    by(note, "outcome-undo").click()
    expect(memory_item(page, saved["id"])).to_be_hidden()

    def undone():
        assert site.api.memories() == []
        assert site.api.request("GET", f"/api/memories/{saved['id']}")[0] == 404
    eventually(undone)


def test_a_hedged_statement_becomes_a_suggestion_to_accept(site, page):
    site.engine.enqueue({"content": REX, "tags": ["pets"]}, "extract")
    site.open(page)
    ask(page, "I think my dog is called Rex.")
    expect(by(page, "suggestion-item")).to_have_count(1)  # after the answer, the suggestion
    [pending] = suggestions(site, "pending")
    item = suggestion_item(page, pending["id"])
    expect(item).to_contain_text(REX)
    assert site.api.memories() == []  # only suggested

    by(item, "suggestion-accept").click()
    expect(item).to_be_hidden()
    eventually(lambda: suggestions(site)[0]["status"] == "accepted",
               "the suggestion to be accepted")
    [memory] = site.api.memories()
    assert memory["content"] == REX and memory["tags"] == ["pets"]
    expect(by(memory_item(page, memory["id"]), "memory-content")).to_have_text(REX)


def test_a_suggestion_can_be_dismissed_and_another_edited_before_saving(site, page):
    site.engine.enqueue({"content": "My cat is called Tom.", "tags": ["pets"]}, "extract")
    site.engine.enqueue({"content": REX, "tags": ["pets"]}, "extract")
    site.open(page)
    ask(page, "I think my cat is called Tom.")
    ask(page, "I think my dog is called Rex.")
    expect(by(page, "suggestion-item")).to_have_count(2)
    rex, tom = suggestions(site, "pending")  # newest first

    page.reload()  # pending suggestions are still offered after a refresh
    expect(by(page, "suggestion-item")).to_have_count(2)

    by(suggestion_item(page, tom["id"]), "suggestion-dismiss").click()
    expect(suggestion_item(page, tom["id"])).to_be_hidden()
    eventually(lambda: {s["id"]: s["status"] for s in suggestions(site)}[tom["id"]]
               == "dismissed", "the suggestion to be dismissed")
    assert site.api.memories() == []

    item = suggestion_item(page, rex["id"])
    by(item, "suggestion-edit").click()
    field = by(item, "suggestion-edit-content")
    expect(field).to_have_value(REX)
    field.fill("My dog is called Rex and he is a beagle.")
    by(item, "suggestion-save").click()
    expect(item).to_be_hidden()
    expect(memory_items(page)).to_have_count(1)
    [memory] = site.api.memories()
    assert memory["content"] == "My dog is called Rex and he is a beagle."
    expect(by(memory_items(page).first, "memory-content")).to_have_text(memory["content"])
    assert [s["status"] for s in suggestions(site, "pending")] == []


def say_the_contradiction(site, page):
    """Seed Lisbon, say Madrid: the dialog opens with both. → (dialog, lisbon, madrid)."""
    lisbon = site.api.add_memory(LISBON, tags=["family"])
    site.engine.enqueue({"content": MADRID, "tags": ["family", "home"]}, "extract")
    site.open(page)
    ask(page, MADRID)
    dialog = by(page, "contradiction-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_role("dialog")
    expect(by(dialog, "contradiction-new")).to_contain_text(MADRID)
    expect(by(dialog, "contradiction-existing")).to_contain_text(LISBON)
    madrid = next(m for m in site.api.memories() if m["content"] == MADRID)
    return dialog, lisbon, madrid


@pytest.mark.parametrize("resolution, kept", [
    ("keep-both", {LISBON, MADRID}),
    ("replace", {MADRID}),
    ("keep-original", {LISBON}),
])
def test_a_contradiction_is_resolved_from_its_dialog(site, page, resolution, kept):
    dialog, lisbon, madrid = say_the_contradiction(site, page)
    by(dialog, f"resolve-{resolution}").click()
    expect(dialog).to_be_hidden()

    def resolved():
        [settled] = site.api.get("/api/contradictions?status=all")["items"]
        assert settled["status"] == "resolved"
        assert set(site.api.contents()) == kept
    eventually(resolved)
    for memory in (lisbon, madrid):
        item = memory_item(page, memory["id"])
        if memory["content"] in kept:
            expect(item).to_be_visible()
        else:
            expect(item).to_be_hidden()


def test_tab_stays_inside_the_contradiction_dialog_and_escape_restores_focus(site, page):
    dialog, _, _ = say_the_contradiction(site, page)
    wait_in_page(page, "(el) => el.contains(document.activeElement)",
                 arg=dialog.element_handle())
    for key in ["Tab"] * 6 + ["Shift+Tab"] * 6:
        page.keyboard.press(key)
        assert focus_is_inside(page, dialog), f"{key} left the contradiction dialog"

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(by(page, "chat-input")).to_be_focused()  # where the person was typing
    assert len(site.api.memories()) == 2  # Esc decides nothing
    [pending] = site.api.get("/api/contradictions")["items"]
    assert pending["status"] == "pending"


def test_a_contradiction_with_markup_in_it_is_shown_as_text(lumara, page):
    site = lumara(contradiction_model_judge=True)  # the model's explanation is the payload
    payload = "<script>window.__xss=1</script>"
    site.api.add_memory(f"My favourite colour is deep blue {payload}")
    statement = f"My favourite colour is light green {payload}"  # cosine 0.82: a candidate
    site.engine.enqueue({"content": statement, "tags": ["colours"]}, "extract")
    site.engine.enqueue({"contradicts": True, "confidence": 0.9,
                         "explanation": "Blue is not green <img src=x onerror=window.__xss=1>"},
                        "judge")
    site.open(page)
    ask(page, statement)
    dialog = by(page, "contradiction-dialog")
    expect(dialog).to_be_visible()
    expect(by(dialog, "contradiction-new")).to_contain_text(f"light green {payload}")
    expect(by(dialog, "contradiction-existing")).to_contain_text(f"deep blue {payload}")
    assert page.evaluate("window.__xss") is None
    assert injected(page) == []
    expect(dialog.locator("img, script, iframe, object, embed")).to_have_count(0)


def test_a_suggestion_edit_fixes_type_and_tags_and_each_settling_can_be_undone(site, page):
    site.engine.enqueue({"content": "My passport number is X123.", "tags": ["baking"]},
                        "extract")
    site.engine.enqueue({"content": REX, "tags": ["pets"]}, "extract")
    site.open(page)
    ask(page, "I think my passport number is X123.")
    ask(page, "I think my dog is called Rex.")
    expect(by(page, "suggestion-item")).to_have_count(2)
    # On a wide screen the Memories tab is hidden: the top bar says what waits.
    expect(by(page, "review-open")).to_be_visible()
    expect(by(page, "review-open")).to_have_accessible_name("Review: 2 waiting")
    rex, passport = suggestions(site, "pending")

    item = suggestion_item(page, passport["id"])
    by(item, "suggestion-edit").click()
    by(item, "suggestion-edit-type").select_option("knowledge")
    by(item, "suggestion-edit-tags").fill("travel, documents")
    by(item, "suggestion-save").click()
    expect(item).to_be_hidden()
    [memory] = site.api.memories()
    assert memory["tags"] == ["travel", "documents"] and memory["type"] == "knowledge"

    undo = page.get_by_role("button", name="Undo", exact=False).last
    undo.click()  # the accepted suggestion is offered again, its memory in the trash
    expect(suggestion_item(page, passport["id"])).to_be_visible()
    eventually(lambda: site.api.memories() == [], "the memory to go to the trash")
    expect(memory_item(page, memory["id"])).to_be_hidden()

    by(suggestion_item(page, rex["id"]), "suggestion-dismiss").click()
    expect(suggestion_item(page, rex["id"])).to_be_hidden()
    page.get_by_role("button", name="Undo", exact=False).last.click()
    expect(suggestion_item(page, rex["id"])).to_be_visible()
    eventually(lambda: {s["id"] for s in suggestions(site, "pending")}
               == {rex["id"], passport["id"]}, "both suggestions to be pending again")


def test_the_contradiction_dialog_starts_on_its_highlighted_choice(site, page):
    dialog, _, _ = say_the_contradiction(site, page)
    expect(by(dialog, "resolve-replace")).to_be_focused()
