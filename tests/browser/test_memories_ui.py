"""The memories pane in a real browser: add (with the duplicate warning), search, filter,
edit, delete with confirmation, long content collapsed."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .ui import (
    by,
    eventually,
    focus_is_inside,
    memory_item,
    memory_items,
    similarity_pattern,
    wait_in_page,
)

SISTER = "My sister Ana lives in Lisbon."
OIL = "The car needs an oil change every 15,000 kilometres."
TOMATOES = "I water the tomatoes every morning at 7."
COLD_BREW = "To make cold brew I steep coarse coffee in water for 16 hours."


def type_badge(kind: str) -> re.Pattern:
    return re.compile(rf"^\s*{kind}\s*$", re.I)


def add_through_the_form(page, content: str, kind: str | None = None, tags: str | None = None):
    by(page, "memory-add-content").fill(content)
    if kind:
        by(page, "memory-add-type").select_option(kind)
    if tags is not None:
        by(page, "memory-add-tags").fill(tags)
    by(page, "memory-add-submit").click()


def test_an_added_memory_comes_first_with_its_type_and_tags(site, page):
    site.api.add_memory(OIL)
    site.open(page)
    expect(memory_items(page)).to_have_count(1)
    add_through_the_form(page, TOMATOES, "experience", "Garden, Plants ")

    expect(memory_items(page)).to_have_count(2)
    expect(by(page, "duplicate-warning")).to_be_hidden()
    newest, _ = site.api.memories()
    assert (newest["content"], newest["type"], newest["tags"]) == (
        TOMATOES, "experience", ["garden", "plants"])
    first = memory_items(page).first
    expect(first).to_have_attribute("data-id", str(newest["id"]))
    expect(first).to_have_attribute("id", f"memory-{newest['id']}")
    expect(by(first, "memory-content")).to_have_text(TOMATOES)
    expect(by(first, "memory-type")).to_have_text(type_badge("experience"))
    expect(by(first, "memory-tags")).to_contain_text("garden")
    expect(by(first, "memory-tags")).to_contain_text("plants")
    expect(by(page, "memory-add-content")).to_have_value("")  # ready for the next one


def test_a_memory_the_server_refuses_shows_its_error_and_adds_nothing(site, page):
    site.open(page)
    add_through_the_form(page, "My dog is called Rex.", tags="pets, " + "x" * 60)
    error = by(page, "memory-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("tag", ignore_case=True)  # the server's message says which
    expect(memory_items(page)).to_have_count(0)
    assert site.api.memories() == []
    expect(by(page, "memory-add-content")).to_have_value("My dog is called Rex.")  # not lost


def test_adding_a_near_copy_warns_first_then_cancel_or_add_anyway(site, page):
    existing = site.api.add_memory("My dog is called Rex.")
    site.open(page)
    add_through_the_form(page, "My dog is called Rex")  # same words: similarity 1.0
    warning = by(page, "duplicate-warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text(existing["content"])
    assert len(site.api.memories()) == 1  # checked, not written

    by(warning, "duplicate-cancel").click()
    expect(warning).to_be_hidden()
    expect(memory_items(page)).to_have_count(1)
    assert len(site.api.memories()) == 1

    by(page, "memory-add-content").fill("My dog is called Rex")
    by(page, "memory-add-submit").click()
    expect(warning).to_be_visible()
    by(warning, "duplicate-add-anyway").click()
    expect(warning).to_be_hidden()
    expect(memory_items(page)).to_have_count(2)
    eventually(lambda: site.api.contents() == ["My dog is called Rex", "My dog is called Rex."],
               "the near-copy to be added")


def test_search_is_debounced_and_shows_similarity_then_clear_brings_the_list_back(site, page):
    sister = site.api.add_memory(SISTER)
    site.api.add_memory(TOMATOES, type="experience")
    site.api.add_memory(COLD_BREW, type="method")
    site.open(page)
    expect(memory_items(page)).to_have_count(3)
    searches = []
    page.on("request", lambda request: "/api/memories/search" in request.url
            and searches.append(request.url))

    query = "sister Ana Lisbon"
    [best] = site.api.search(query)
    search = by(page, "memory-search")
    search.press_sequentially(query)  # one key at a time, quickly
    first = memory_items(page).first
    expect(first).to_have_attribute("data-id", str(sister["id"]))
    expect(by(first, "memory-similarity")).to_contain_text(
        similarity_pattern(best["similarity"]))
    expect(by(page, "memory-similarity")).to_have_count(memory_items(page).count())
    assert 1 <= len(searches) < len(query), f"{len(searches)} searches for {len(query)} keys"
    assert "q=sister+Ana+Lisbon" in searches[-1] or "q=sister%20Ana%20Lisbon" in searches[-1]

    by(page, "search-clear").click()
    expect(search).to_have_value("")
    expect(memory_items(page)).to_have_count(3)
    expect(by(page, "memory-similarity")).to_have_count(0)


def test_type_filters(site, page):
    site.api.add_memory(SISTER)
    tomatoes = site.api.add_memory(TOMATOES, type="experience")
    brew = site.api.add_memory(COLD_BREW, type="method")
    site.open(page)
    expect(memory_items(page)).to_have_count(3)
    expect(by(page, "type-filter-all")).to_have_attribute("aria-pressed", "true")

    by(page, "type-filter-method").click()
    expect(by(page, "type-filter-method")).to_have_attribute("aria-pressed", "true")
    expect(by(page, "type-filter-all")).to_have_attribute("aria-pressed", "false")
    expect(memory_items(page)).to_have_count(1)
    expect(memory_items(page).first).to_have_attribute("data-id", str(brew["id"]))
    expect(by(memory_items(page).first, "memory-type")).to_have_text(type_badge("method"))

    by(page, "type-filter-experience").click()
    expect(by(page, "type-filter-experience")).to_have_attribute("aria-pressed", "true")
    expect(by(page, "type-filter-method")).to_have_attribute("aria-pressed", "false")
    expect(memory_items(page)).to_have_count(1)
    expect(memory_items(page).first).to_have_attribute("data-id", str(tomatoes["id"]))

    by(page, "type-filter-knowledge").click()
    expect(memory_items(page)).to_have_count(1)
    expect(by(memory_items(page).first, "memory-content")).to_have_text(SISTER)

    by(page, "type-filter-all").click()
    expect(by(page, "type-filter-all")).to_have_attribute("aria-pressed", "true")
    expect(memory_items(page)).to_have_count(3)


def test_a_search_keeps_to_the_chosen_type(site, page):
    site.api.add_memory("My sister Ana lives in Lisbon.")
    site.api.add_memory("My sister Ana visited Lisbon in May.", type="experience")
    site.open(page)
    by(page, "type-filter-experience").click()
    by(page, "memory-search").fill("sister Ana Lisbon")
    expect(by(page, "memory-similarity")).to_have_count(1)
    expect(by(memory_items(page).first, "memory-type")).to_have_text(type_badge("experience"))


def test_an_edit_is_saved_and_the_new_text_is_searchable(site, page):
    memory = site.api.add_memory(SISTER, tags=["family"])
    site.api.add_memory(OIL)
    site.open(page)
    item = memory_item(page, memory["id"])

    by(item, "memory-edit").click()  # cancel first: nothing changes
    expect(by(page, "memory-edit-content")).to_have_value(SISTER)
    by(page, "memory-edit-content").fill("Something else entirely.")
    by(page, "memory-edit-cancel").click()
    expect(by(page, "memory-edit-content")).to_be_hidden()
    expect(by(item, "memory-content")).to_have_text(SISTER)
    assert site.api.get(f"/api/memories/{memory['id']}")["memory"]["content"] == SISTER

    moved = "My sister Ana moved to Porto in June."
    by(item, "memory-edit").click()
    by(page, "memory-edit-content").fill(moved)
    by(page, "memory-edit-type").select_option("experience")
    by(page, "memory-edit-tags").fill("family, Porto")
    by(page, "memory-edit-save").click()
    expect(by(page, "memory-edit-content")).to_be_hidden()
    expect(by(item, "memory-content")).to_have_text(moved)
    expect(by(item, "memory-type")).to_have_text(type_badge("experience"))

    def saved():
        memory_now = site.api.get(f"/api/memories/{memory['id']}")["memory"]
        assert (memory_now["content"], memory_now["type"], memory_now["tags"]) == (
            moved, "experience", ["family", "porto"])
    eventually(saved)

    page.reload()
    expect(by(memory_item(page, memory["id"]), "memory-content")).to_have_text(moved)
    [found, *_] = site.api.search("sister Ana moved Porto June")
    assert found["memory"]["id"] == memory["id"] and found["memory"]["content"] == moved


def test_delete_asks_first_cancel_keeps_ok_removes(site, page):
    keep = site.api.add_memory(OIL)
    memory = site.api.add_memory(SISTER)
    site.open(page)
    item = memory_item(page, memory["id"])

    by(item, "memory-delete").click()
    dialog = by(page, "confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_role("dialog")
    by(dialog, "confirm-cancel").click()
    expect(dialog).to_be_hidden()
    expect(item).to_be_visible()
    assert site.api.request("GET", f"/api/memories/{memory['id']}")[0] == 200

    by(item, "memory-delete").click()
    expect(dialog).to_be_visible()
    by(dialog, "confirm-ok").click()
    expect(dialog).to_be_hidden()
    expect(item).to_be_hidden()
    expect(memory_items(page)).to_have_count(1)

    def deleted():
        assert site.api.request("GET", f"/api/memories/{memory['id']}")[0] == 404
        assert [m["id"] for m in site.api.memories()] == [keep["id"]]
    eventually(deleted)


def test_escape_closes_the_confirm_dialog_and_focus_returns_to_delete(site, page):
    memory = site.api.add_memory(SISTER)
    site.open(page)
    delete = by(memory_item(page, memory["id"]), "memory-delete")
    delete.click()
    dialog = by(page, "confirm-dialog")
    expect(dialog).to_be_visible()
    wait_in_page(page, "(el) => el.contains(document.activeElement)",
                 arg=dialog.element_handle())  # focus moved into the dialog
    for key in ["Tab"] * 4 + ["Shift+Tab"] * 4:  # and stays there
        page.keyboard.press(key)
        assert focus_is_inside(page, dialog), f"{key} left the confirm dialog"

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(delete).to_be_focused()
    assert site.api.request("GET", f"/api/memories/{memory['id']}")[0] == 200


def test_long_content_is_collapsed_until_expanded(site, page):
    long_text = "Long note: " + " ".join(f"line{i} of my notes about the garden." for i in
                                         range(12))
    assert len(long_text) > 300
    long = site.api.add_memory(long_text)
    short = site.api.add_memory(SISTER)
    site.open(page)
    expect(by(memory_item(page, short["id"]), "memory-expand")).to_be_hidden()
    item = memory_item(page, long["id"])
    content = by(item, "memory-content")
    expect(content).to_be_visible()
    collapsed = content.evaluate(
        "(el, full) => el.innerText.trim().length < full.length"
        " || el.scrollHeight > el.clientHeight + 1", long_text)
    assert collapsed, "content over 200 characters is shown in full before expanding"
    height = content.evaluate("(el) => el.getBoundingClientRect().height")

    by(item, "memory-expand").click()
    wait_in_page(
        page, "([el, full, h]) => el.innerText.replace(/\\s+/g, ' ').trim() === full"
        " && el.scrollHeight <= el.clientHeight + 1 && el.getBoundingClientRect().height > h",
        arg=[content.element_handle(), long_text, height])


def test_only_content_over_200_characters_is_collapsed(site, page):
    at_limit = site.api.add_memory("a" + " note" * 39 + "!!!!")
    over = site.api.add_memory("b" + " note" * 40)
    assert (len(at_limit["content"]), len(over["content"])) == (200, 201)
    site.open(page)
    expect(by(memory_item(page, over["id"]), "memory-expand")).to_be_visible()
    expect(by(memory_item(page, at_limit["id"]), "memory-expand")).to_be_hidden()
