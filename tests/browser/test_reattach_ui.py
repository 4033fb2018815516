"""An answer outlives a reload, in a real browser: the page reloaded mid-answer comes back
to the conversation and follows the answer still generating on the server, from its start,
and can stop it; a new conversation is found again too."""

from __future__ import annotations

from playwright.sync_api import expect

from .ui import by, messages, send


def test_a_reload_mid_answer_follows_the_answer_to_its_end(gated_site, page):
    engine = gated_site.engine
    engine.enqueue("One two three four five.")
    gated_site.open(page)
    send(page, "Count to five, please.")  # a new conversation
    engine.allow(2)
    answer = messages(page, "assistant").last
    expect(by(answer, "message-body")).to_have_text("One two")

    gated_site.open(page)  # reload: the page knew its conversation before the answer ended
    expect(messages(page, "user")).to_have_count(1)
    answer = messages(page, "assistant").last
    expect(answer).to_have_attribute("data-status", "streaming")
    expect(by(answer, "message-body")).to_have_text("One two")  # what came before, again
    engine.open()
    expect(answer).to_have_attribute("data-status", "complete")
    expect(by(answer, "message-body")).to_have_text("One two three four five.")
    expect(messages(page, "assistant")).to_have_count(1)
    [conversation] = gated_site.api.conversations()
    stored = gated_site.api.messages(conversation["id"])
    assert [(m["role"], m["status"]) for m in stored] == [("user", "complete"),
                                                          ("assistant", "complete")]

    gated_site.open(page)  # over: shown from the conversation, nothing to follow
    expect(by(messages(page, "assistant").last, "message-body")).to_have_text(
        "One two three four five.")
    expect(messages(page, "assistant")).to_have_count(1)
    assert page.console_errors == []


def test_a_reloaded_page_can_stop_the_answer_it_follows(gated_site, page):
    engine = gated_site.engine
    engine.enqueue(" ".join(f"word{i}" for i in range(50)))
    gated_site.open(page)
    send(page, "Count to fifty, please.")
    engine.allow(1)
    expect(by(messages(page, "assistant").last, "message-body")).to_have_text("word0")
    gated_site.open(page)
    answer = messages(page, "assistant").last
    expect(by(answer, "message-body")).to_have_text("word0")
    by(page, "stop-button").click()
    expect(answer).to_have_attribute("data-status", "stopped")
    [conversation] = gated_site.api.conversations()
    assert gated_site.api.messages(conversation["id"])[-1]["status"] == "stopped"
    assert page.console_errors == []
