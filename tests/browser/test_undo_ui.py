"""Undo in a real browser: the toast after a delete and after an edit, a memory's History
with Restore, and the Recently deleted view (restore, delete forever, empty the trash)."""

from __future__ import annotations

from playwright.sync_api import expect

from .ui import by, delete_through_the_ui, eventually, memory_item, memory_items

SISTER = "My sister Ana lives in Lisbon."
MOVED = "My sister Ana moved to Porto in June."
OIL = "The car needs an oil change every 15,000 kilometres."
TOMATOES = "I water the tomatoes every morning at 7."


def toast_with(page, text: str):
    return by(page, "toast").filter(has_text=text)


def edit_through_the_ui(page, memory_id: int, content: str) -> None:
    item = memory_item(page, memory_id)
    by(item, "memory-edit").click()
    by(item, "memory-edit-content").fill(content)
    by(item, "memory-edit-save").click()
    expect(by(item, "memory-content")).to_have_text(content)


def test_delete_then_undo_puts_the_memory_back_in_its_place(site, page):
    oldest = site.api.add_memory(OIL)
    memory = site.api.add_memory(SISTER)
    newest = site.api.add_memory(TOMATOES)
    site.open(page)
    delete_through_the_ui(page, memory["id"])
    eventually(lambda: site.api.request("GET", f"/api/memories/{memory['id']}")[0] == 404)

    toast = toast_with(page, "Memory deleted")
    expect(toast).to_be_visible()
    expect(page.locator("#toasts")).to_have_attribute("aria-live", "polite")
    undo = by(toast, "toast-undo")
    undo.focus()  # keyboard: the Undo is a button
    page.keyboard.press("Enter")

    expect(toast_with(page, "Memory restored")).to_be_visible()
    expect(memory_items(page)).to_have_count(3)
    ids = [int(memory_items(page).nth(i).get_attribute("data-id")) for i in range(3)]
    assert ids == [newest["id"], memory["id"], oldest["id"]]  # where it was, not on top
    expect(memory_item(page, memory["id"])).to_be_focused()
    assert site.api.get(f"/api/memories/{memory['id']}")["memory"] == memory  # same id, dates
    assert site.api.get("/api/trash")["total"] == 0


def test_edit_then_undo_brings_the_old_text_back(site, page):
    memory = site.api.add_memory(SISTER)
    site.open(page)
    edit_through_the_ui(page, memory["id"], MOVED)
    eventually(lambda: site.api.get(f"/api/memories/{memory['id']}")["memory"]["content"]
               == MOVED)

    toast = toast_with(page, "Saved")
    by(toast, "toast-undo").click()

    item = memory_item(page, memory["id"])
    expect(by(item, "memory-content")).to_have_text(SISTER)
    expect(toast_with(page, "Change undone")).to_be_visible()
    assert site.api.get(f"/api/memories/{memory['id']}")["memory"]["content"] == SISTER
    [found, *_] = site.api.search(SISTER)  # the vector followed the text back
    assert found["memory"]["id"] == memory["id"]


def test_history_lists_versions_newest_first_and_restores_one(site, page):
    memory = site.api.add_memory(SISTER)
    site.api.request("PATCH", f"/api/memories/{memory['id']}", {"content": MOVED})
    site.api.request("PATCH", f"/api/memories/{memory['id']}", {"type": "experience"})
    site.open(page)
    item = memory_item(page, memory["id"])
    by(item, "memory-history").click()

    dialog = by(page, "history-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_role("dialog")
    expect(by(dialog, "history-current")).to_contain_text(MOVED)
    versions = by(dialog, "history-version")
    expect(versions).to_have_count(2)
    expect(versions.nth(0)).to_have_attribute("data-version", "2")
    expect(by(versions.nth(0), "history-change")).to_contain_text("knowledge → experience")
    expect(versions.nth(1)).to_contain_text(SISTER)
    expect(by(versions.nth(1), "history-change")).to_contain_text("the text")

    by(versions.nth(1), "history-restore").click()
    expect(dialog).to_be_hidden()
    expect(by(item, "memory-content")).to_have_text(SISTER)
    expect(by(item, "memory-type")).to_have_text("knowledge")
    restored = site.api.get(f"/api/memories/{memory['id']}")["memory"]
    assert (restored["content"], restored["type"]) == (SISTER, "knowledge")
    # The restore itself can be undone from its toast.
    by(toast_with(page, "Version 1 restored"), "toast-undo").click()
    expect(by(item, "memory-content")).to_have_text(MOVED)


def test_history_of_an_unedited_memory_says_so_and_escape_closes_it(site, page):
    memory = site.api.add_memory(SISTER)
    site.open(page)
    button = by(memory_item(page, memory["id"]), "memory-history")
    button.click()
    dialog = by(page, "history-dialog")
    expect(dialog).to_contain_text("not been edited")
    expect(by(dialog, "history-version")).to_have_count(0)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(button).to_be_focused()


def test_recently_deleted_restores_and_deletes_forever(site, page):
    kept = site.api.add_memory(OIL)
    doomed = [site.api.add_memory(SISTER), site.api.add_memory(TOMATOES)]
    for memory in doomed:
        site.api.request("DELETE", f"/api/memories/{memory['id']}")
    site.open(page)
    expect(memory_items(page)).to_have_count(1)

    toggle = by(page, "trash-toggle")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    view = by(page, "trash-view")
    expect(view).to_be_visible()
    expect(by(page, "memory-list")).to_be_hidden()
    items = by(view, "trash-item")
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_contain_text(TOMATOES)  # most recently deleted first
    expect(view).to_contain_text("30 days")

    by(items.nth(1), "trash-restore").click()
    expect(items).to_have_count(1)
    eventually(lambda: site.api.request("GET", f"/api/memories/{doomed[0]['id']}")[0] == 200)

    by(items.nth(0), "trash-purge").click()
    confirm = by(page, "confirm-dialog")
    by(confirm, "confirm-ok").click()
    expect(items).to_have_count(0)
    expect(view).to_contain_text("Nothing here")
    eventually(lambda: site.api.get("/api/trash")["total"] == 0)
    status, body = site.api.request("POST", f"/api/trash/{doomed[1]['id']}/restore")
    assert status == 404 and body["error"]["code"] == "trash_item_not_found"

    by(view, "trash-close").click()
    expect(view).to_be_hidden()
    expect(toggle).to_be_focused()
    expect(memory_items(page)).to_have_count(2)  # the restored one is back in the list
    ids = [int(memory_items(page).nth(i).get_attribute("data-id")) for i in range(2)]
    assert ids == [doomed[0]["id"], kept["id"]]


def test_empty_trash_asks_first(site, page):
    for content in (SISTER, TOMATOES, OIL):
        memory = site.api.add_memory(content)
        site.api.request("DELETE", f"/api/memories/{memory['id']}")
    site.open(page)
    by(page, "trash-toggle").click()
    view = by(page, "trash-view")
    expect(by(view, "trash-item")).to_have_count(3)

    by(view, "trash-empty").click()
    confirm = by(page, "confirm-dialog")
    expect(confirm).to_contain_text("3 deleted memories")
    by(confirm, "confirm-cancel").click()
    expect(by(view, "trash-item")).to_have_count(3)
    assert site.api.get("/api/trash")["total"] == 3

    by(view, "trash-empty").click()
    by(confirm, "confirm-ok").click()
    expect(by(view, "trash-item")).to_have_count(0)
    expect(by(view, "trash-empty")).to_be_hidden()
    assert site.api.get("/api/trash")["total"] == 0
    page.keyboard.press("Escape")  # Esc leaves the view
    expect(view).to_be_hidden()
