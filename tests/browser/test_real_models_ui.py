"""One end-to-end run on the REAL bundled models (all-MiniLM-L6-v2 and SmolLM2-135M through
llama.cpp): a memory added in the form grounds the chat's answer, receipt and all."""

from __future__ import annotations

from playwright.sync_api import expect

from ..helpers import engine_idle, wait_until
from .ui import by, memory_items, send

REAL_WAIT = 90  # seconds: a real model on two cores; never reached when all is well
SISTER = "My sister Ana lives in Lisbon."


def test_a_memory_added_in_the_form_grounds_the_answer(lumara, page, real_engine,
                                                      real_embedder):
    # The session's one real engine and embedder (tests/conftest.py): one inference thread.
    site = lumara(real_engine, real_embedder, idle_timeout=REAL_WAIT)  # warm-up done
    site.open(page)

    by(page, "memory-add-content").fill(SISTER)
    by(page, "memory-add-submit").click()
    expect(memory_items(page)).to_have_count(1, timeout=REAL_WAIT * 1000)
    [memory] = site.api.memories()
    assert memory["content"] == SISTER

    send(page, "Where does my sister live?")
    answer = by(page, "chat-log").locator("[data-testid='message'][data-role='assistant']").last
    expect(answer).to_have_attribute("data-status", "complete", timeout=REAL_WAIT * 1000)
    receipt = by(page, "receipt-item")
    expect(receipt).to_have_count(1)
    expect(receipt).to_have_attribute("href", f"#memory-{memory['id']}")
    expect(by(answer, "message-body")).to_contain_text("Lisbon")
    # Whoever uses the shared engine next starts with it idle.
    wait_until(lambda: engine_idle(real_engine), timeout=REAL_WAIT, what="the engine to idle")
