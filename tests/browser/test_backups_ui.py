"""The backups in the Data panel, in a real browser: back up now, delete a memory, restore
the backup after confirming (a cancel first changes nothing), and the memory is back in
the list."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .ui import ask, by, delete_through_the_ui, memory_item, memory_items

SISTER = "My sister Ana lives in Lisbon."
OIL = "The car needs an oil change every 15,000 kilometres."


def open_panel(page):
    by(page, "data-open").click()
    panel = by(page, "data-panel")
    expect(panel).to_be_visible()
    return panel


def test_back_up_delete_restore_and_the_memory_is_back(site, page):
    sister = site.api.add_memory(SISTER)
    site.api.add_memory(OIL)
    site.open(page)
    expect(memory_items(page)).to_have_count(2)

    panel = open_panel(page)
    expect(by(panel, "backup-empty")).to_have_text("No backups yet.")
    by(panel, "backup-create").click()
    expect(by(panel, "backup-status")).to_have_text(re.compile(r"^Backed up 2 memories \("))
    backup = by(panel, "backup-item")
    expect(backup).to_have_count(1)
    expect(by(backup, "backup-meta")).to_have_text(re.compile(r"^Made by hand · .+ · 2 memories$"))
    expect(by(backup, "backup-date")).not_to_be_empty()
    by(panel, "data-close").click()

    delete_through_the_ui(page, sister["id"])
    expect(memory_items(page)).to_have_count(1)
    ask(page, "What is the capital of France?")  # a conversation the backup does not hold
    expect(by(page, "conversation-item")).to_have_count(1)

    # Asked first: Cancel changes nothing and goes back to the panel.
    by(open_panel(page), "backup-restore").click()
    dialog = by(page, "confirm-dialog")
    expect(dialog).to_contain_text("2 memories")
    by(dialog, "confirm-cancel").click()
    panel = by(page, "data-panel")
    expect(by(panel, "backup-item")).to_have_count(1)
    assert site.api.contents() == [OIL]

    by(panel, "backup-restore").click()
    by(by(page, "confirm-dialog"), "confirm-ok").click()
    panel = by(page, "data-panel")
    expect(by(panel, "backup-status")).to_have_text(re.compile(r"^Restored 2 memories from "))
    expect(memory_item(page, sister["id"])).to_have_count(1)
    expect(memory_items(page)).to_have_count(2)
    expect(by(page, "conversation-item")).to_have_count(0)  # the page follows the restore
    # The database as it was before the restore is the newest backup now.
    expect(by(panel, "backup-item")).to_have_count(2)
    expect(by(by(panel, "backup-item").first, "backup-meta")).to_have_text(
        re.compile(r"^Before a restore · .+ · 1 memory$"))
    assert sorted(site.api.contents()) == sorted([SISTER, OIL])
