"""Helpers shared by the browser tests: reading and driving the UI through its test ids."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Locator, Page, expect


def eventually(check, what: str = "the server to agree", timeout: float = 10.0):
    """Retry `check` until it passes (returns anything but False, raises no AssertionError):
    the UI may show a change before the request that makes it has finished."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check() is not False:
                return
            problem = None
        except AssertionError as error:
            problem = error
        if time.monotonic() > deadline:
            raise problem or AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_in_page(page: Page, expression: str, arg=None, what: str = "the page") -> None:
    """Like page.wait_for_function, which compiles its predicate in the page and so needs
    'unsafe-eval' — the app's Content-Security-Policy forbids that; evaluate() is exempt."""
    eventually(lambda: bool(page.evaluate(expression, arg)), what)


def by(scope, test_id: str) -> Locator:
    return scope.get_by_test_id(test_id)


def messages(page: Page, role: str | None = None) -> Locator:
    role_filter = "" if role is None else f"[data-role='{role}']"
    return by(page, "chat-log").locator(f"[data-testid='message']{role_filter}")


def last_answer(page: Page) -> Locator:
    return messages(page, "assistant").last


def send(page: Page, text: str, button: bool = False) -> None:
    """Type a message and press Enter (or click Send), as a person would."""
    field = by(page, "chat-input")
    field.fill(text)
    if button:
        by(page, "send-button").click()
    else:
        field.press("Enter")


def ask(page: Page, text: str, status: str = "complete", button: bool = False) -> Locator:
    """Send a message and wait for its answer to end with `status`; the answer's locator."""
    before = messages(page, "assistant").count()
    send(page, text, button)
    expect(messages(page, "assistant")).to_have_count(before + 1)
    answer = messages(page, "assistant").nth(before)
    expect(answer).to_have_attribute("data-status", status)
    return answer


def memory_items(page: Page) -> Locator:
    return by(by(page, "memory-list"), "memory-item")


def memory_item(page: Page, memory_id: int) -> Locator:
    return by(page, "memory-list").locator(f"[data-testid='memory-item'][data-id='{memory_id}']")


def delete_through_the_ui(page: Page, memory_id: int) -> None:
    """Delete a memory from its list item, confirming the dialog."""
    by(memory_item(page, memory_id), "memory-delete").click()
    by(by(page, "confirm-dialog"), "confirm-ok").click()
    expect(memory_item(page, memory_id)).to_have_count(0)


def conversation_item(page: Page, conversation_id: int) -> Locator:
    return by(page, "conversation-list").locator(
        f"[data-testid='conversation-item'][data-id='{conversation_id}']")


def similarity_pattern(similarity: float) -> re.Pattern:
    """The similarity as a person might be shown it: 0.61, 0.612, 0.6124, 61% or 61.2%."""
    shown = {f"{similarity:.2f}", f"{similarity:.3f}", f"{similarity:.4f}",
             f"{similarity * 100:.0f}%", f"{similarity * 100:.1f}%",
             f"{similarity * 100:.0f} %", f"{similarity * 100:.1f} %"}
    return re.compile("|".join(re.escape(text) for text in sorted(shown, key=len,
                                                                     reverse=True)))


def clipboard(page: Page) -> str:
    return page.evaluate("navigator.clipboard.readText()")


def injected(page: Page) -> list[str]:
    """Dangerous elements the page ever inserted (see conftest.WATCH_INJECTIONS)."""
    return page.evaluate("window.__injected")


def focus_is_inside(page: Page, container: Locator) -> bool:
    return container.evaluate("(el) => el.contains(document.activeElement)")


def confirm_rename(page: Page, item: Locator, title: str) -> None:
    """Rename a conversation whichever way the UI asks for the title: a prompt() dialog, or a
    field that takes the focus (filled, then Enter)."""
    prompts = []

    def answer(dialog):
        prompts.append(dialog.type)
        dialog.accept(title)

    page.once("dialog", answer)
    by(item, "conversation-rename").click()
    if not prompts:
        page.remove_listener("dialog", answer)
        field = page.locator(":focus")
        expect(field).to_be_editable()
        field.fill(title)
        field.press("Enter")
