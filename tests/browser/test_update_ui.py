"""An update stated in the chat, in a real browser (issue 14): "Our rabbit is called Pepper
now." is saved and offered against the remembered name in the contradiction dialog, where
Replace keeps the new one in one click; the old one waits in the trash, from which the page
restores it. An addition about the same rabbit raises no dialog."""

from __future__ import annotations

from playwright.sync_api import expect

from .ui import ask, by, eventually, memory_item, wait_in_page

CLOVER = "Our rabbit is called Clover."
PEPPER = "Our rabbit is called Pepper now."
CARROTS = "Our rabbit also likes carrots."


# Kept in the page, so that waiting on them reads the page (Playwright's sync event callbacks
# run only while the test is inside a Playwright call).
RECORD_CHAT_EVENTS = """
(() => {
  window.__chatEvents = [];
  const Socket = window.WebSocket;
  window.WebSocket = class extends Socket {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (m) => window.__chatEvents.push(JSON.parse(m.data).type));
    }
  };
})();
"""


def record_chat_events(page) -> None:
    """From the next page load on, window.__chatEvents lists the chat events' types."""
    page.add_init_script(RECORD_CHAT_EVENTS)


def event_types(page) -> list[str]:
    return page.evaluate("window.__chatEvents")


def test_an_update_in_the_chat_is_replaced_in_one_click(site, page):
    clover = site.api.add_memory(CLOVER, tags=["pets"])
    site.engine.enqueue({"content": PEPPER, "tags": ["pets"]}, "extract")
    record_chat_events(page)
    site.open(page)
    ask(page, PEPPER)

    dialog = by(page, "contradiction-dialog")
    expect(dialog).to_be_visible()
    assert "contradiction" in event_types(page)
    expect(by(dialog, "contradiction-existing")).to_contain_text(CLOVER)
    expect(by(dialog, "contradiction-new")).to_contain_text(PEPPER)
    pepper = next(m for m in site.api.memories() if m["content"] == PEPPER)
    assert pepper["source"] == "chat"

    by(dialog, "resolve-replace").click()
    expect(dialog).to_be_hidden()
    expect(memory_item(page, clover["id"])).to_have_count(0)
    expect(memory_item(page, pepper["id"])).to_be_visible()

    def replaced():
        assert [m["id"] for m in site.api.memories()] == [pepper["id"]]
        assert [m["id"] for m in site.api.get("/api/trash")["items"]] == [clover["id"]]
        [settled] = site.api.get("/api/contradictions?status=all")["items"]
        assert settled["status"] == "resolved"
    eventually(replaced)

    # The older name is not lost: the page's Recently deleted view brings it back.
    by(page, "trash-toggle").click()
    view = by(page, "trash-view")
    item = by(view, "trash-item")
    expect(item).to_have_count(1)
    expect(by(item, "memory-content")).to_have_text(CLOVER)
    by(item, "trash-restore").click()
    expect(by(view, "trash-item")).to_have_count(0)
    eventually(lambda: sorted(site.api.contents()) == sorted([CLOVER, PEPPER]),
               "the old memory to be restored")
    assert site.api.get("/api/trash")["total"] == 0


def test_an_addition_in_the_chat_raises_no_contradiction(site, page):
    site.api.add_memory(CLOVER, tags=["pets"])
    site.engine.enqueue({"content": CARROTS, "tags": ["pets"]}, "extract")
    record_chat_events(page)
    site.open(page)
    ask(page, CARROTS)

    # A contradiction would come after the save and before turn_end, the turn's last event.
    wait_in_page(page, "window.__chatEvents.includes('turn_end')", what="the turn to end")
    assert "memory_saved" in event_types(page), event_types(page)
    assert "contradiction" not in event_types(page), event_types(page)
    assert sorted(site.api.contents()) == sorted([CLOVER, CARROTS])
    expect(by(page, "outcome-note").filter(has_text=CARROTS)).to_be_visible()
    expect(by(page, "contradiction-dialog")).to_have_count(0)
    assert site.api.get("/api/contradictions?status=all")["items"] == []
