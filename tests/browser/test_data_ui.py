"""The Data panel in a real browser: export downloads, import with its summary (and a bad
file that changes nothing), an import's progress bar (found again after a reload),
re-embedding with a progress bar, and a re-embed already running when the page loads."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

from playwright.sync_api import expect

from lumara_web.memory import transfer

from .ui import by, eventually, memory_items

SISTER = "My sister Ana lives in Lisbon."
OIL = "The car needs an oil change every 15,000 kilometres."
TOMATOES = "I water the tomatoes every morning at 7."
COLD_BREW = "To make cold brew I steep coarse coffee in water for 16 hours."


def open_panel(site, page):
    site.open(page)
    by(page, "data-open").click()
    panel = by(page, "data-panel")
    expect(panel).to_be_visible()
    return panel


def export_file(tmp_path, name: str, memories: list, **fields) -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"format": "lumara-export", "version": 1,
                                "embedding_model": "fake/bag-of-words", "dimensions": 384,
                                "memories": memories, **fields}), encoding="utf-8")
    return str(path)


def test_the_export_links_download_the_memories(site, page):
    site.api.add_memory(SISTER, tags=["family"])
    site.api.add_memory(TOMATOES, type="experience")
    panel = open_panel(site, page)

    with page.expect_download() as download:
        by(panel, "export-json").click()
    body = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert body["format"] == "lumara-export"
    assert [(m["content"], m["type"], m["tags"]) for m in body["memories"]] == [
        (SISTER, "knowledge", ["family"]), (TOMATOES, "experience", [])]
    assert download.value.suggested_filename.endswith(".json")

    with page.expect_download() as download:
        by(panel, "export-markdown").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.startswith("# Lumara memories") and "Lisbon" in text

    expect(by(panel, "export-json-vectors")).to_have_attribute("href", "/api/export?vectors=1")
    by(panel, "export-versions").check()
    expect(by(panel, "export-json")).to_have_attribute("href", "/api/export?versions=1")
    expect(by(panel, "export-markdown")).to_have_attribute("href",
                                                           "/api/export?format=markdown")


def test_an_import_shows_what_was_added_and_skipped_and_the_list_follows(site, page,
                                                                        tmp_path):
    site.api.add_memory(SISTER)
    panel = open_panel(site, page)
    expect(memory_items(page)).to_have_count(1)
    path = export_file(tmp_path, "backup.json", [
        {"content": OIL}, {"content": SISTER}, {"content": COLD_BREW, "type": "method"}])

    by(panel, "import-file").set_input_files(path)
    by(panel, "import-submit").click()
    expect(by(panel, "import-summary")).to_have_text(
        "Imported 2 memories; skipped 1 duplicate.")
    skipped = by(panel, "import-skipped")
    expect(skipped).to_have_count(1)
    expect(skipped).to_contain_text(SISTER)
    assert sorted(site.api.contents()) == sorted([SISTER, OIL, COLD_BREW])

    by(panel, "data-close").click()
    expect(panel).to_be_hidden()
    expect(memory_items(page)).to_have_count(3)  # the list was loaded again


def test_a_bad_file_shows_the_error_and_imports_nothing(site, page, tmp_path):
    site.api.add_memory(SISTER)
    panel = open_panel(site, page)
    path = export_file(tmp_path, "bad.json", [
        {"content": OIL}, {"content": TOMATOES, "tags": "not a list"}])

    by(panel, "import-file").set_input_files(path)
    by(panel, "import-submit").click()
    error = by(panel, "import-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("memories[1]")
    expect(error).to_contain_text("tags")
    expect(error).to_contain_text("Nothing was imported")
    expect(by(panel, "import-summary")).to_have_count(0)
    assert site.api.contents() == [SISTER]

    not_json = tmp_path / "notes.json"
    not_json.write_text("these are my notes, not an export", encoding="utf-8")
    by(panel, "import-file").set_input_files(str(not_json))
    by(panel, "import-submit").click()
    expect(error).to_contain_text("notes.json is not a JSON export file")
    assert site.api.contents() == [SISTER]
    expect(memory_items(page)).to_have_count(1)


def test_re_embedding_shows_a_progress_bar_that_reaches_done(site, page):
    for content in (SISTER, OIL, TOMATOES):
        site.api.add_memory(content)
    panel = open_panel(site, page)
    by(panel, "reembed-start").click()
    status = by(panel, "reembed-status")
    expect(status).to_contain_text("Re-embedded 3 memories")
    bar = by(panel, "reembed-progress")
    expect(bar).to_have_attribute("max", "3")
    expect(bar).to_have_attribute("value", "3")
    assert site.api.get("/api/reembed")["state"] == "done"
    expect(by(panel, "reembed-start")).to_be_enabled()  # and it can run again


def test_a_re_embed_running_when_the_page_loads_shows_its_progress(site, page, monkeypatch):
    for content in (SISTER, OIL, TOMATOES):
        site.api.add_memory(content)
    job = site.app.extensions["lumara"].reembed
    job.batch = 1
    release, held = threading.Event(), threading.Event()
    report = job._report

    def held_after_the_first_batch(done, total):
        report(done, total)
        if done == 1:
            held.set()
            release.wait(30)
    monkeypatch.setattr(job, "_report", held_after_the_first_batch)
    try:
        status, _ = site.api.request("POST", "/api/reembed")
        assert status == 202
        assert held.wait(30)
        site.open(page)
        banner = by(page, "reembed-banner")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("1 of 3")
        bar = by(banner, "reembed-banner-progress")
        expect(bar).to_have_attribute("value", "1")
        expect(bar).to_have_attribute("max", "3")

        # The panel shows the same run, and will not start a second one meanwhile.
        by(page, "data-open").click()
        panel = by(page, "data-panel")
        expect(by(panel, "reembed-start")).to_be_disabled()
        expect(by(panel, "reembed-status")).to_contain_text("1 of 3")
    finally:
        release.set()
    expect(by(banner, "reembed-banner-text")).to_contain_text("Re-embedded 3 memories")
    expect(by(panel, "reembed-progress")).to_have_attribute("value", "3")
    eventually(lambda: site.api.get("/api/reembed")["state"] == "done")


def test_an_import_shows_its_progress_bar_again_after_a_reload_then_its_result(
        site, page, tmp_path, monkeypatch):
    site.api.add_memory(SISTER)
    job = site.services.import_job
    job.batch = 1
    monkeypatch.setattr(transfer, "REPORT_EVERY", 1)
    release, held = threading.Event(), threading.Event()
    report = job._report

    def held_while_checking(phase, done, total):
        report(phase, done, total)
        if (phase, done) == ("checking", 2):
            held.set()
            release.wait(30)
    monkeypatch.setattr(job, "_report", held_while_checking)
    # Another model's file: every memory is embedded, then checked, then written.
    path = export_file(tmp_path, "backup.json", [
        {"content": OIL}, {"content": TOMATOES}, {"content": COLD_BREW, "type": "method"},
        {"content": "I keep the spare key under the blue flower pot."}],
        embedding_model="someone/else")
    try:
        panel = open_panel(site, page)
        by(panel, "import-file").set_input_files(path)
        by(panel, "import-submit").click()
        assert held.wait(30)
        bar = panel.get_by_role("progressbar", name=re.compile("looking for duplicates"))
        expect(bar).to_have_attribute("data-testid", "import-progress")
        expect(bar).to_have_attribute("value", "2")
        expect(bar).to_have_attribute("max", "4")
        expect(by(panel, "import-status")).to_contain_text(
            "Step 2 of 3: looking for duplicates… 2 of 4")
        expect(by(panel, "import-submit")).to_be_disabled()  # one import at a time

        page.reload()  # the page finds the running import again: a banner, and the panel
        expect(page.get_by_test_id("chat-input")).to_be_visible()
        banner = by(page, "import-banner")
        expect(banner).to_be_visible()
        expect(by(banner, "import-banner-text")).to_contain_text("2 of 4")
        expect(by(banner, "import-banner-progress")).to_have_attribute("value", "2")
        by(page, "data-open").click()
        panel = by(page, "data-panel")
        expect(by(panel, "import-progress")).to_have_attribute("value", "2")
        expect(memory_items(page)).to_have_count(1)  # nothing is written before the end
    finally:
        release.set()
    expect(by(panel, "import-summary")).to_have_text("Imported 4 memories; skipped 0 duplicates.")
    expect(by(panel, "import-progress")).to_be_hidden()
    expect(by(banner, "import-banner-text")).to_contain_text("Imported 4 memories")
    expect(memory_items(page)).to_have_count(5)  # the list was loaded again
    assert site.api.get("/api/import")["result"]["imported"] == 4


def test_the_panel_keeps_the_focus_through_a_re_embed_and_esc_closes_it(site, page):
    site.api.add_memory(SISTER)
    panel = open_panel(site, page)
    start = by(panel, "reembed-start")
    start.focus()
    page.keyboard.press("Enter")
    expect(by(panel, "reembed-status")).to_contain_text("Re-embedded 1 memory")
    expect(start).to_be_focused()  # not dropped to the page while it ran
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(by(page, "data-open")).to_be_focused()
