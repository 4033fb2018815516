"""Regenerate and edit, in a real browser: the last answer can be generated again and the
last message edited (the turn is then redone); only the last turn offers them, and a
reload shows the conversation as redone."""

from __future__ import annotations

from playwright.sync_api import expect

from .ui import ask, by, eventually, messages

SISTER = "My sister Ana lives in Lisbon."
QUESTION = "Where does my sister Ana live?"
REX = "My dog is called Rex."
MAX = "My dog is called Max."


def texts(page, role: str) -> list[str]:
    return [text.strip() for text in
            by(messages(page, role), "message-body").all_inner_texts()]


def test_the_last_answer_can_be_regenerated_in_its_place(site, page):
    site.api.add_memory(SISTER)
    site.engine.enqueue("Your sister Ana lives in Lisbon.")
    site.engine.enqueue("Your sister Ana lives in Lisbon, I believe.")
    site.engine.enqueue("Ana lives in Lisbon.")
    site.open(page)
    ask(page, QUESTION)
    ask(page, QUESTION)
    expect(by(page, "regenerate-answer")).to_have_count(1)  # only under the last answer
    expect(by(messages(page, "assistant").last, "regenerate-answer")).to_be_visible()
    expect(by(page, "edit-message")).to_have_count(1)

    by(page, "regenerate-answer").click()
    expect(messages(page, "assistant").last).to_have_attribute("data-status", "complete")
    expect(messages(page, "assistant").last).to_contain_text("Ana lives in Lisbon.")
    assert texts(page, "user") == [QUESTION, QUESTION]
    assert len(texts(page, "assistant")) == 2
    expect(by(page, "regenerate-answer")).to_have_count(1)

    site.open(page)  # what the server kept is what the page showed
    expect(messages(page, "assistant")).to_have_count(2)
    assert texts(page, "assistant") == ["Your sister Ana lives in Lisbon.",
                                        "Ana lives in Lisbon."]
    assert page.console_errors == []


def test_an_edited_message_redoes_its_turn_and_takes_back_what_it_saved(site, page):
    site.engine.enqueue({"content": REX, "tags": ["pets"]}, "extract")
    site.engine.enqueue({"content": MAX, "tags": ["pets"]}, "extract")
    site.open(page)
    ask(page, REX)
    eventually(lambda: site.api.contents() == [REX], "Rex to be saved")

    by(page, "edit-message").click()
    area = by(page, "edit-message-input")
    expect(area).to_be_focused()
    expect(area).to_have_value(REX)
    page.keyboard.press("Escape")  # put back as it was
    expect(area).to_have_count(0)
    expect(by(page, "edit-message")).to_be_focused()
    assert texts(page, "user") == [REX]

    by(page, "edit-message").click()
    by(page, "edit-message-input").fill(MAX)
    page.keyboard.press("Enter")
    expect(messages(page, "assistant")).to_have_count(1)
    expect(messages(page, "assistant").last).to_have_attribute("data-status", "complete")
    expect(messages(page, "assistant").last).to_contain_text("your dog is called Max")
    expect(by(page, "toast")).to_contain_text(f"Moved to the trash with your old message: {REX}")
    eventually(lambda: site.api.contents() == [MAX], "Max to replace Rex")
    expect(by(page, "outcome-note")).to_have_count(1)
    expect(by(page, "outcome-note")).to_contain_text(f"Saved: “{MAX}”")

    by(page, "toast-undo").click()  # Rex back from the trash: the user's call
    eventually(lambda: sorted(site.api.contents()) == [MAX, REX], "Rex to come back")

    site.open(page)  # the conversation comes back from the server, after the page
    expect(messages(page, "user")).to_have_count(1)
    assert texts(page, "user") == [MAX]
    expect(by(page, "outcome-note")).to_contain_text(f"Saved: “{MAX}”")
    assert page.console_errors == []
