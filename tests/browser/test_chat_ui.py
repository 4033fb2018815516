"""The chat pane in a real browser: streaming, stopping, receipts, history, conversations,
copy buttons, and what may never happen (script from a memory or an answer running)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ..helpers import wait_idle, wait_until
from .ui import (
    ask,
    by,
    clipboard,
    confirm_rename,
    conversation_item,
    eventually,
    injected,
    last_answer,
    memory_item,
    messages,
    send,
    similarity_pattern,
)

COUNTING = " ".join(f"word{i}" for i in range(100))


def open_conversation(page, conversation_id: int, title: str) -> None:
    conversation_item(page, conversation_id).get_by_text(title).first.click()


def test_enter_sends_and_the_answer_streams_token_by_token_then_renders(gated_site, page):
    engine = gated_site.engine
    engine.enqueue("One **two** three four.")  # tokens: "One ", "**two** ", "three ", "four."
    gated_site.open(page)
    field = by(page, "chat-input")
    field.fill("What is the capital of France?")
    field.press("Enter")

    expect(messages(page, "user")).to_have_count(1)
    expect(by(messages(page, "user").first, "message-body")).to_have_text(
        "What is the capital of France?")
    expect(field).to_have_value("")  # sent, so the field is cleared

    engine.allow(1)
    answer = last_answer(page)
    body = by(answer, "message-body")
    expect(body).to_have_text("One")
    expect(answer).to_have_attribute("data-status", "streaming")
    expect(by(page, "stop-button")).to_be_visible()
    engine.allow(1)
    expect(body).to_have_text("One **two**")  # streamed as plain text, not yet Markdown
    expect(answer).to_have_attribute("data-status", "streaming")
    engine.allow(1)
    expect(body).to_have_text("One **two** three")
    expect(answer).to_have_attribute("data-status", "streaming")

    engine.allow(1)
    expect(answer).to_have_attribute("data-status", "complete")
    # On 'done' the text is replaced by the server's sanitized HTML.
    expect(body.locator("strong")).to_have_text("two")
    expect(body).to_have_text("One two three four.")
    expect(by(page, "stop-button")).to_be_hidden()


def test_shift_enter_inserts_a_newline_instead_of_sending(site, page):
    site.open(page)
    field = by(page, "chat-input")
    field.fill("First line")
    field.press("Shift+Enter")
    field.press_sequentially("second line")
    expect(field).to_have_value("First line\nsecond line")

    field.press("Enter")  # now it goes, both lines as one message
    expect(messages(page, "user")).to_have_count(1)
    expect(last_answer(page)).to_have_attribute("data-status", "complete")
    [conversation] = site.api.conversations()
    user = site.api.messages(conversation["id"])[0]
    assert user["role"] == "user" and user["content"] == "First line\nsecond line"
    expect(by(messages(page, "user").first, "message-body")).to_contain_text("second line")


@pytest.mark.parametrize("how", ["stop-button", "escape"])
def test_stop_ends_the_answer_mid_way(gated_site, page, how):
    engine = gated_site.engine
    engine.enqueue(COUNTING)
    gated_site.open(page)
    send(page, "Can you count to one hundred?")
    answer = last_answer(page)
    engine.allow(2)
    expect(by(answer, "message-body")).to_have_text("word0 word1")
    expect(answer).to_have_attribute("data-status", "streaming")

    if how == "stop-button":
        by(page, "stop-button").click()
    else:
        by(page, "chat-input").focus()
        by(page, "chat-input").press("Escape")

    expect(answer).to_have_attribute("data-status", "stopped")
    expect(by(page, "stop-button")).to_be_hidden()
    expect(by(answer, "message-body")).to_have_text("word0 word1")
    wait_idle(engine)
    # The engine got the stop: the answer saved is the two tokens let through, not 100.
    [conversation] = gated_site.api.conversations()

    def saved_stopped():
        saved = gated_site.api.messages(conversation["id"])[-1]
        assert saved["role"] == "assistant" and saved["status"] == "stopped"
        assert saved["content"].split() == ["word0", "word1"]
    eventually(saved_stopped)


def test_a_question_shows_the_receipt_of_the_memory_it_used(site, page):
    sister = site.api.add_memory("My sister Ana lives in Lisbon.", tags=["family"])
    site.api.add_memory("The car needs an oil change every 15,000 kilometres.")
    question = "Where does my sister Ana live?"
    [hit] = site.api.search(question, threshold=0.35)
    site.engine.enqueue("Your sister Ana lives in Lisbon.")
    site.open(page)
    answer = ask(page, question, button=True)  # the Send button sends too

    items = by(answer, "receipt-item") if by(answer, "receipt-item").count() \
        else by(page, "receipt-item")
    expect(items).to_have_count(1)
    receipt = items.first
    expect(receipt).to_have_attribute("href", f"#memory-{sister['id']}")
    expect(receipt).to_contain_text(similarity_pattern(hit["similarity"]))
    expect(by(answer, "message-body")).to_have_text("Your sister Ana lives in Lisbon.")

    receipt.click()  # the link leads to that memory in the list
    target = page.locator(f"#memory-{sister['id']}")
    expect(target).to_be_visible()
    expect(target).to_have_attribute("data-testid", "memory-item")
    expect(target).to_be_in_viewport()


def test_the_conversation_is_back_after_a_page_refresh(site, page):
    site.engine.enqueue("Paris is the **capital** of France.")
    site.open(page)
    ask(page, "What is the capital of France?")
    [conversation] = site.api.conversations()

    page.reload()  # the conversation shown before is shown again, from the server
    expect(conversation_item(page, conversation["id"])).to_contain_text(
        "What is the capital of France?")
    expect(messages(page)).to_have_count(2)
    expect(by(messages(page, "user").first, "message-body")).to_have_text(
        "What is the capital of France?")
    answer = last_answer(page)
    expect(answer).to_have_attribute("data-status", "complete")
    expect(by(answer, "message-body").locator("strong")).to_have_text("capital")


def test_new_switch_rename_and_delete_conversations(site, page):
    site.engine.enqueue("Paris.")
    site.engine.enqueue("Madrid.")
    site.open(page)
    ask(page, "What is the capital of France?")
    [france] = site.api.conversations()
    expect(conversation_item(page, france["id"])).to_contain_text(
        "What is the capital of France?")

    by(page, "new-conversation").click()
    expect(messages(page)).to_have_count(0)
    ask(page, "What is the capital of Spain?")
    spain, again = site.api.conversations()  # newest first: a new conversation, not France
    assert again["id"] == france["id"] and spain["id"] != france["id"]
    items = by(by(page, "conversation-list"), "conversation-item")
    expect(items).to_have_count(2)
    expect(items.first).to_have_attribute("data-id", str(spain["id"]))

    open_conversation(page, france["id"], "What is the capital of France?")
    expect(last_answer(page)).to_contain_text("Paris.")
    expect(by(page, "chat-log")).not_to_contain_text("Madrid.")
    ask(page, "What is the capital of Italy?")  # goes on in the conversation shown
    assert [m["content"] for m in site.api.messages(france["id"])][-2:] == [
        "What is the capital of Italy?", "OK."]

    confirm_rename(page, conversation_item(page, spain["id"]), "Spanish geography")
    expect(conversation_item(page, spain["id"])).to_contain_text("Spanish geography")

    def renamed():
        conversation = site.api.get(f"/api/conversations/{spain['id']}")["conversation"]
        assert conversation["title"] == "Spanish geography"
    eventually(renamed)
    page.reload()
    expect(conversation_item(page, spain["id"])).to_contain_text("Spanish geography")

    open_conversation(page, france["id"], "What is the capital of France?")
    expect(by(page, "chat-log")).to_contain_text("Paris.")
    by(conversation_item(page, france["id"]), "conversation-delete").click()
    dialog = by(page, "confirm-dialog")
    expect(dialog).to_be_visible()
    by(dialog, "confirm-ok").click()
    expect(conversation_item(page, france["id"])).to_be_hidden()
    expect(by(page, "chat-log")).not_to_contain_text("Paris.")  # the one shown is gone

    def deleted():
        assert site.api.request("GET", f"/api/conversations/{france['id']}")[0] == 404
    eventually(deleted)
    assert [c["id"] for c in site.api.conversations()] == [spain["id"]]


def test_copy_buttons_copy_the_answer_and_a_code_block(site, page, context):
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.server.base)
    site.engine.enqueue("Run this:\n\n```python\nprint('hi')\n```\n\nThat prints hi.")
    site.open(page)
    answer = ask(page, "How does Python print text?")
    expect(by(answer, "message-body").locator("pre code")).to_have_text("print('hi')")

    copy_code = by(answer, "copy-code")
    expect(copy_code).to_have_count(1)
    copy_code.click()
    assert clipboard(page).strip() == "print('hi')"

    copy_answer = by(answer, "copy-answer")
    expect(copy_answer).to_have_count(1)
    copy_answer.click()
    copied = clipboard(page)
    assert "Run this:" in copied and "print('hi')" in copied and "That prints hi." in copied


IMG = '<img src=x onerror="window.__xss=1">'
SCRIPT = "<script>window.__xss=1</script>"
LINK = "[click](javascript:window.__xss=1)"


def test_memories_and_answers_never_run_as_html(site, page):
    site.api.add_memory(IMG, tags=["<img src=x onerror=window.__xss=1>"])
    site.api.add_memory(SCRIPT, type="method")
    site.engine.enqueue(f"Look: {IMG} {SCRIPT} {LINK} and "
                        '<a href="javascript:window.__xss=1">this</a>.')
    # Notes that share few words with the memories above (else they are their duplicates).
    note = "My note is <svg onload=window.__xss=1> about the garden shed."
    site.engine.enqueue({"content": note, "tags": ["notes"]}, "extract")
    site.engine.enqueue({"content": "The bike repair manual reads <script>window.__xss=1"
                                    "</script> on page four.",
                         "tags": ["notes"]}, "extract")
    site.open(page)
    expect(by(page, "memory-list")).to_contain_text(SCRIPT)  # shown as text
    expect(by(page, "memory-list")).to_contain_text(IMG)

    question = f"What is {IMG} or {SCRIPT}?"
    answer = ask(page, question)  # the receipt holds both memories
    expect(by(messages(page, "user").first, "message-body")).to_have_text(question)
    expect(by(page, "receipt-item")).to_have_count(2)
    expect(by(answer, "message-body")).to_contain_text("<script>window.__xss=1</script>")
    ask(page, note)  # saved: a note names it, the list shows it
    expect(by(page, "outcome-note").last).to_contain_text("<svg onload=window.__xss=1>")
    ask(page, "I think my note is <script>window.__xss=1</script>.")  # a suggestion
    expect(by(page, "suggestion-item")).to_contain_text("<script>")
    by(page, "memory-search").fill("img onerror window")
    expect(by(page, "memory-similarity").first).to_be_visible()
    page.evaluate("() => new Promise((done) => setTimeout(done, 50))")  # let onerror fire

    assert page.evaluate("window.__xss") is None
    assert injected(page) == []
    for area in ("chat-log", "memory-list", "suggestion-list", "conversation-list"):
        expect(by(page, area).locator("img, script, iframe, object, embed")).to_have_count(0)
        expect(by(page, area).locator("[onerror], [onload], [onclick]")).to_have_count(0)
    expect(page.locator("a[href^='javascript:' i]")).to_have_count(0)


def test_the_page_loads_and_chats_without_console_errors(site, page):
    site.api.add_memory("My sister Ana lives in Lisbon.")
    site.engine.enqueue("Your sister Ana lives in Lisbon.")
    site.open(page)
    ask(page, "Where does my sister Ana live?")
    page.reload()
    expect(by(page, "memory-list").get_by_test_id("memory-item")).to_have_count(1)
    assert page.page_errors == []
    assert page.console_errors == []


def test_an_answer_that_fails_shows_the_error(site, page):
    site.engine.enqueue(RuntimeError("llama.cpp exploded"))
    site.open(page)
    send(page, "What is the capital of France?")
    expect(by(page, "chat-error")).to_be_visible()
    expect(by(page, "chat-error")).to_contain_text(re.compile(r"\w"))
    # An answer that was begun is marked as failed, not left streaming.
    expect(by(page, "chat-log").locator(
        "[data-testid='message'][data-role='assistant']:not([data-status='error'])")
    ).to_have_count(0)
    # The chat goes on: the next message is answered.
    answer = ask(page, "What is the capital of Spain?")
    expect(by(answer, "message-body")).to_have_text("OK.")


def test_a_message_waiting_for_the_model_shows_its_place_in_the_queue(gated_site, page,
                                                                      make_context):
    engine = gated_site.engine
    engine.enqueue("Paris.")
    engine.enqueue("Madrid.")
    gated_site.open(page)
    send(page, "What is the capital of France?")
    wait_until(lambda: engine.status()["queue"]["running"], what="the first answer to start")

    # Another browser profile (a tab of this one would reopen the answering conversation
    # and follow it): its message waits behind the first.
    other = gated_site.open(make_context().new_page())
    send(other, "What is the capital of Spain?")
    expect(by(other, "queue-status")).to_be_visible()
    expect(by(other, "queue-status")).to_contain_text("2")

    engine.open()
    expect(last_answer(page)).to_have_attribute("data-status", "complete")
    expect(last_answer(other)).to_have_attribute("data-status", "complete")
    expect(by(last_answer(other), "message-body")).to_have_text("Madrid.")
    expect(by(other, "queue-status")).to_be_hidden()


def test_memory_list_links_of_a_receipt_exist_for_each_item(site, page):
    """Every receipt link points at a memory the page can show."""
    ids = [site.api.add_memory(text)["id"] for text in (
        "My sister Ana lives in Lisbon.", "My sister Ana likes painting.")]
    site.open(page)
    ask(page, "What does my sister Ana do?")
    links = by(page, "receipt-item")
    expect(links).to_have_count(2)
    hrefs = sorted(links.evaluate_all("(els) => els.map((e) => e.getAttribute('href'))"))
    assert hrefs == sorted(f"#memory-{i}" for i in ids)
    for memory_id in ids:
        expect(memory_item(page, memory_id)).to_have_attribute("id", f"memory-{memory_id}")


def test_conversations_with_the_same_title_are_told_apart_in_the_list(site, page):
    site.open(page)
    for turn in range(3):
        if turn:
            by(page, "new-conversation").click()
            expect(messages(page)).to_have_count(0)
        ask(page, "Trip plans")
    newest, middle, oldest = site.api.conversations()
    assert newest["title"] == middle["title"] == oldest["title"] == "Trip plans"
    titles = by(page, "conversation-list").locator(".conv-title")
    expect(titles).to_have_text(["Trip plans (3)", "Trip plans (2)", "Trip plans"])
    delete = by(conversation_item(page, middle["id"]), "conversation-delete")
    expect(delete).to_have_accessible_name("Delete “Trip plans (2)”")
