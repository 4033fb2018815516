"""An answer that did not end by itself says so under it, while streaming ends and after a
reload (the reason is stored with the message)."""

from __future__ import annotations

from playwright.sync_api import expect

from .ui import ask, last_answer

LONG = " ".join(f"word{i}" for i in range(300))  # past answer_max_tokens (200)


def test_a_cut_answer_says_why_now_and_after_a_reload(site, page):
    site.engine.enqueue(LONG)
    site.open(page)
    answer = ask(page, "Tell me a very long story about the sea.")
    note = "Cut short: the answer reached its length limit."
    expect(answer.get_by_text(note)).to_be_visible()
    page.reload()
    expect(last_answer(page).get_by_text(note)).to_be_visible()

    site.engine.enqueue("The sea is salty.")  # an answer that ended by itself: no note
    answer = ask(page, "Tell me one fact about the sea.")
    expect(answer.get_by_text("The sea is salty.")).to_be_visible()
    expect(answer.get_by_text("Cut short", exact=False)).to_have_count(0)
