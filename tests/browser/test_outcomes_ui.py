"""What the chat did besides answering stays in the conversation, in a real browser: each
saved memory, suggestion and contradiction is a note under its answer that a reload shows
again as it stands now, with the memory's Undo while it is kept."""

from __future__ import annotations

from playwright.sync_api import expect

from .ui import ask, by, eventually, memory_item

REX = "My dog is called Rex."
LISBON = "My sister lives in Lisbon."
MADRID = "My sister lives in Madrid."


def notes(page):
    return by(page, "outcome-note")


def test_what_the_chat_remembered_stays_in_the_conversation_after_a_reload(site, page):
    lisbon = site.api.add_memory(LISBON, tags=["family"])
    site.engine.enqueue({"content": REX, "tags": ["pets"]}, "extract")
    site.engine.enqueue({"content": MADRID, "tags": ["family"]}, "extract")
    site.engine.enqueue({"content": "My cat is called Tom.", "tags": ["pets"]}, "extract")
    site.open(page)
    ask(page, REX)
    expect(notes(page)).to_have_count(1)
    expect(notes(page).first).to_contain_text(f"Saved: “{REX}”")
    ask(page, MADRID)
    dialog = by(page, "contradiction-dialog")
    expect(dialog).to_be_visible()
    by(dialog, "resolve-keep-original").click()  # Madrid goes to the trash
    expect(dialog).to_be_hidden()
    ask(page, "I think my cat is called Tom.")
    expect(notes(page)).to_have_count(4)
    rex, madrid, clash, tom = (notes(page).nth(i) for i in range(4))
    expect(madrid).to_have_attribute("data-state", "gone")  # followed the dialog at once
    expect(clash).to_contain_text("Settled: kept the earlier memory.")

    site.open(page)  # a reload: the notes come back with the conversation, as things stand
    expect(notes(page)).to_have_count(4)
    expect(rex).to_contain_text(f"Saved: “{REX}”")
    expect(rex).to_have_attribute("data-state", "kept")
    expect(madrid).to_contain_text(f"Saved, then removed: “{MADRID}”")
    expect(by(madrid, "outcome-undo")).to_have_count(0)  # nothing left to undo
    expect(clash).to_contain_text(f"May contradict “{LISBON}”")
    expect(clash).to_contain_text("One says Lisbon, the other Madrid, about your sister.")
    expect(clash).to_contain_text("Settled: kept the earlier memory.")
    expect(tom).to_contain_text("Suggested for your review: “My cat is called Tom.”")
    expect(by(tom, "outcome-review")).to_be_visible()
    # Each note sits after the answer to its statement.
    answers = page.locator("[data-testid='message'][data-role='assistant']")
    assert answers.nth(0).bounding_box()["y"] < rex.bounding_box()["y"] \
        < answers.nth(1).bounding_box()["y"] < madrid.bounding_box()["y"]

    [saved] = [m for m in site.api.memories() if m["content"] == REX]
    undo = by(rex, "outcome-undo")
    expect(undo).to_have_accessible_name(f"Undo: saved “{REX}”")
    undo.click()
    expect(rex).to_contain_text(f"Saved, then removed: “{REX}”")
    expect(memory_item(page, saved["id"])).to_be_hidden()
    eventually(lambda: REX not in site.api.contents(), "Rex to go to the trash")
    expect(rex).to_be_focused()  # the vanished button's place

    by(page, "toast-undo").click()  # the toast undoes the removal
    expect(rex).to_have_attribute("data-state", "kept")
    expect(by(rex, "outcome-undo")).to_be_visible()
    eventually(lambda: REX in site.api.contents(), "Rex to come back")
    assert {m["content"] for m in site.api.memories()} == {REX, LISBON}
    assert lisbon["content"] == LISBON
    assert page.console_errors == []
