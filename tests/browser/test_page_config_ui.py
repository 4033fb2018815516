"""The page takes its limits and memory types from the server (web/pages.py page_config),
not from copies in its scripts: start the app with other limits and the page enforces those."""

from __future__ import annotations

from playwright.sync_api import expect

from lumara_web.config import MEMORY_TYPES

from .ui import by, memory_item, messages

MESSAGE_LIMIT = 20  # far below the 8000 default, so a page using its own copy lets more through
CONTENT_LIMIT = 30


def test_the_chat_refuses_a_message_over_the_servers_limit_and_sends_one_at_it(lumara, page):
    site = lumara(max_message_chars=MESSAGE_LIMIT)
    site.open(page)
    field = by(page, "chat-input")
    expect(field).to_have_attribute("maxlength", str(MESSAGE_LIMIT))

    # A longer text can still land in the field (maxlength binds typing, not scripts);
    # sending it is refused by the page, before anything goes to the server.
    field.evaluate("(el, text) => { el.value = text; }", "x" * (MESSAGE_LIMIT + 5))
    field.press("Enter")
    expect(page.locator("#chat-status-text")).to_have_text(
        f"That message is {MESSAGE_LIMIT + 5} characters; the limit is {MESSAGE_LIMIT}.")
    expect(messages(page, "user")).to_have_count(0)
    expect(field).to_have_value("x" * (MESSAGE_LIMIT + 5))  # kept, to shorten

    at_limit = "y" * MESSAGE_LIMIT
    field.fill(at_limit)
    field.press("Enter")
    expect(by(messages(page, "user").first, "message-body")).to_have_text(at_limit)
    expect(messages(page, "assistant").first).to_have_attribute("data-status", "complete")
    [conversation] = site.api.conversations()  # only the message at the limit was sent
    assert [message["content"] for message in site.api.messages(conversation["id"])
            if message["role"] == "user"] == [at_limit]


def test_memory_fields_take_the_servers_content_limit_and_types(lumara, page):
    site = lumara(max_content_chars=CONTENT_LIMIT)
    memory = site.api.add_memory("My sister Ana lives in Lisbon.")
    site.open(page)

    add = by(page, "memory-add-content")
    expect(add).to_have_attribute("maxlength", str(CONTENT_LIMIT))
    add.press_sequentially("z" * (CONTENT_LIMIT + 3))
    expect(add).to_have_value("z" * CONTENT_LIMIT)

    options = by(page, "memory-add-type").locator("option")
    expect(options).to_have_count(len(MEMORY_TYPES))
    assert [options.nth(i).get_attribute("value") for i in range(len(MEMORY_TYPES))] == list(
        MEMORY_TYPES)
    for memory_type in MEMORY_TYPES:
        expect(by(page, f"type-filter-{memory_type}")).to_be_visible()

    # The inline edit field is built by the script: it reads the same limit.
    by(memory_item(page, memory["id"]), "memory-edit").click()
    expect(by(page, "memory-edit-content")).to_have_attribute("maxlength", str(CONTENT_LIMIT))
    edit_options = by(page, "memory-edit-type").locator("option")
    expect(edit_options).to_have_count(len(MEMORY_TYPES))
