"""The page under its Content-Security-Policy in a real browser: it loads, chats over the
websocket and shows memories with nothing blocked; off the loopback the ?token= address
logs the browser in; another site's page can neither add a memory nor open the chat socket."""

from __future__ import annotations

import logging
import re
import threading

import pytest
from playwright.sync_api import expect
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from lumara_web.web import security

from .ui import ask, by, memory_items

SISTER = "My sister Ana lives in Lisbon."
DOG = "My dog is called Rex."

# Every CSP violation the page reports, recorded from before its own scripts run.
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


def csp_problems(page) -> list[str]:
    reported = page.evaluate("window.__csp")
    logged = [text for text in page.console_errors if "Content Security Policy" in text]
    return reported + logged


def add_a_memory_and_chat(site, page) -> None:
    """What a person does first: add a memory through the form, then ask about it."""
    before = memory_items(page).count()
    by(page, "memory-add-content").fill(SISTER)
    by(page, "memory-add-submit").click()  # a same-origin POST, with its Origin header
    expect(memory_items(page)).to_have_count(before + 1)
    expect(by(memory_items(page).first, "memory-content")).to_have_text(SISTER)
    site.engine.enqueue("Your sister Ana lives in Lisbon.")
    answer = ask(page, "Where does my sister Ana live?")  # over the websocket
    expect(by(answer, "receipt-item")).to_have_count(1)
    expect(by(answer, "receipt-item")).to_contain_text(SISTER)


def test_the_page_works_under_its_content_security_policy(site, page):
    site.api.add_memory(DOG)
    page.add_init_script(WATCH_CSP)
    response = page.goto(site.url)
    assert "script-src 'self'" in response.headers["content-security-policy"]
    site.open(page)
    expect(memory_items(page)).to_have_count(1)
    add_a_memory_and_chat(site, page)
    page.goto(site.server.base + "/metrics")  # the server-drawn page, inline SVG charts
    expect(page.get_by_test_id("metrics-targets")).to_be_visible()
    assert csp_problems(page) == []
    assert page.console_errors == []


def test_off_the_loopback_the_token_address_logs_the_browser_in(lumara, page):
    site = lumara(host="0.0.0.0")
    token = site.app.extensions["lumara"].access.token
    page.add_init_script(WATCH_CSP)
    refused = page.goto(site.url)
    assert refused.status == 401
    site.open(page, f"/?token={token}")
    assert page.url == site.url  # the token left the address bar
    assert token not in page.evaluate("document.cookie")  # HttpOnly: no script reads it
    (cookie,) = page.context.cookies()
    assert (cookie["name"], cookie["sameSite"], cookie["httpOnly"]) == (
        security.TOKEN_COOKIE, "Strict", True)
    add_a_memory_and_chat(site, page)  # the cookie opens the websocket and the API
    assert csp_problems(page) == []


# A page on another site that tries what an attacker's page would: add a memory with a
# "simple" request (no preflight) and open the chat socket to read the answers.
ATTACK = """<!doctype html><script>
window.results = {};
fetch("{base}/api/memories", {method: "POST", mode: "no-cors",
  headers: {"Content-Type": "text/plain"}, body: JSON.stringify({content: "Planted."})})
  .then(() => { window.results.post = "sent"; }, () => { window.results.post = "failed"; });
const ws = new WebSocket("{ws}/ws/chat");
ws.onopen = () => { window.results.socket = "open"; };
ws.onclose = () => { window.results.socket = window.results.socket || "refused"; };
</script>"""


@pytest.fixture
def attacker():
    """serve(html) → the address of a page on another site of this machine: a second
    loopback server (another port is another origin). A public site's page would be
    stopped by Chromium itself (Local Network Access) before Lumara saw the request."""
    servers = []

    def serve(html: str) -> str:
        server = make_server("127.0.0.1", 0, Response(html, mimetype="text/html"))
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.socket.getsockname()[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_another_sites_page_can_neither_add_a_memory_nor_open_the_socket(site, page, attacker,
                                                                          caplog):
    caplog.set_level(logging.INFO, logger="werkzeug")
    base = site.server.base
    page.goto(attacker(ATTACK.replace("{base}", base).replace("{ws}", "ws" + base[4:])))
    page.wait_for_function("window.results.post && window.results.socket")
    assert page.evaluate("window.results.socket") == "refused"
    assert site.api.memories() == []
    # Refused by Lumara itself: the browser did send both.
    log = re.sub(r"\x1b\[[0-9;]*m", "",  # werkzeug colours the status on a terminal
                 "\n".join(record.getMessage() for record in caplog.records))
    assert '"POST /api/memories HTTP/1.1" 403' in log
    assert '"GET /ws/chat HTTP/1.1" 403' in log
