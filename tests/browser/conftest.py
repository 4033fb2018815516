"""Browser tests: the real app on a live loopback server (tests/conftest.py's serve), Debian's
Chromium driven by Playwright. One browser per session, a fresh context and page per test.

The UI is written against a fixed list of data-testid hooks; these tests hold it to them."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest
from playwright.sync_api import expect, sync_playwright

from ..fakes import FakeEmbedder, FakeEngine
from ..helpers import GatedEngine, LiveServer
from .ui import wait_in_page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
HTTP_WAIT = 10

# Auto-waiting expect(): long enough for a busy two-core machine, never reached when all is well.
expect.set_options(timeout=10_000)

# Records, from before the page's own scripts run, every element that could run script or
# load something if user or model text reached the DOM as HTML: <img>, <script>, <iframe>,
# on* attributes, javascript: links. Catches even an element that is shown and replaced.
WATCH_INJECTIONS = """
(() => {
  window.__injected = [];
  // Count websockets created and opened, so a test can wait for the chat connection.
  window.__sockets = {created: 0, open: 0};
  const NativeSocket = window.WebSocket;
  window.WebSocket = class extends NativeSocket {
    constructor(...args) {
      super(...args);
      window.__sockets.created += 1;
      this.addEventListener("open", () => { window.__sockets.open += 1; });
    }
  };
  const suspicious = (el) => {
    if (!(el instanceof Element)) return false;
    const tag = el.tagName.toLowerCase();
    if (["img", "iframe", "object", "embed", "frame"].includes(tag)) return true;
    if (tag === "script" && document.readyState !== "loading") return true;
    if (tag === "a" && /^\\s*javascript:/i.test(el.getAttribute("href") || "")) return true;
    return [...el.attributes].some((a) => /^on/i.test(a.name));
  };
  const inspect = (node) => {
    if (!(node instanceof Element)) return;
    for (const el of [node, ...node.querySelectorAll("*")]) {
      if (suspicious(el)) window.__injected.push(el.outerHTML.slice(0, 200));
    }
  };
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === "attributes") inspect(r.target);
      r.addedNodes.forEach(inspect);
    }
  }).observe(document, {subtree: true, childList: true, attributes: true,
                        attributeFilter: ["href", "onerror", "onload", "onclick"]});
})();
"""


class Api:
    """JSON requests to the live server, for arranging and checking what the UI did."""

    def __init__(self, base: str):
        self.base = base

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        headers = {} if body is None else {"Content-Type": "application/json"}
        request = urllib.request.Request(self.base + path, data=data, headers=headers,
                                         method=method)
        try:
            with urllib.request.urlopen(request, timeout=HTTP_WAIT) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.loads(error.read())

    def get(self, path: str) -> dict:
        status, body = self.request("GET", path)
        assert status == 200, (path, status, body)
        return body

    def add_memory(self, content: str, type: str = "knowledge", tags=()) -> dict:
        status, body = self.request("POST", "/api/memories",
                                    {"content": content, "type": type, "tags": list(tags)})
        assert status == 201, body
        return body["memory"]

    def memories(self, **query) -> list[dict]:
        query.setdefault("limit", 200)
        return self.get("/api/memories?" + urllib.parse.urlencode(query))["items"]

    def contents(self) -> list[str]:
        return [memory["content"] for memory in self.memories()]

    def search(self, q: str, **query) -> list[dict]:
        return self.get("/api/memories/search?" + urllib.parse.urlencode({"q": q, **query}))[
            "results"]

    def conversations(self) -> list[dict]:
        return self.get("/api/conversations")["items"]

    def messages(self, conversation_id: int) -> list[dict]:
        return self.get(f"/api/conversations/{conversation_id}")["messages"]


class Site:
    """One app on a live server, with its (fake or real) engine and the JSON API beside it."""

    def __init__(self, server: LiveServer, engine, embedder):
        self.server = server
        self.app = server.app
        self.services = server.app.extensions["lumara"]
        self.engine = engine
        self.embedder = embedder
        self.url = server.base + "/"
        self.api = Api(server.base)

    def open(self, page, path: str = "/"):
        """Load the page and wait until the chat and the memory list are on screen."""
        page.goto(self.server.base + path)
        expect(page.get_by_test_id("chat-input")).to_be_visible()
        # A chat socket opened at start-up is open before the test types (one opened lazily,
        # on the first message, is not waited for).
        wait_in_page(page, "window.__sockets.open >= window.__sockets.created",
                     what="the chat socket to open")
        return page


@pytest.fixture(scope="session")
def playwright_driver():
    driver = sync_playwright().start()
    yield driver
    driver.stop()


@pytest.fixture(scope="session")
def browser(playwright_driver):
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def context_options():
    """Override in a test module (or parametrize) for viewport, colour scheme, …"""
    return {}


@pytest.fixture
def make_context(browser, context_options, lumara):
    """make_context() → a browser context (a separate profile: its own storage), closed
    at the end. Depends on `lumara` so that pages (and their websockets) close before
    servers stop."""
    contexts = []

    def make():
        options = {"viewport": {"width": 1280, "height": 900}, **context_options}
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        context.add_init_script(WATCH_INJECTIONS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def context(make_context):
    return make_context()


@pytest.fixture
def page(context):
    """A page that keeps what went wrong in it: console errors, uncaught exceptions and
    server errors. An uncaught exception or a 500 fails the test that caused it."""
    page = context.new_page()
    page.console_errors = []
    page.page_errors = []
    page.server_errors = []
    page.on("console", lambda message: message.type == "error"
            and page.console_errors.append(message.text))
    page.on("pageerror", lambda error: page.page_errors.append(str(error)))
    page.on("response", lambda response: response.status >= 500 and response.status != 503
            and page.server_errors.append(f"{response.status} {response.url}"))
    yield page
    assert page.page_errors == [], "uncaught exceptions in the page"
    assert page.server_errors == [], "the page's requests got server errors"


@pytest.fixture
def lumara(serve):
    """start(engine=None, embedder=None, idle_timeout=…, **settings) → a Site on a fresh
    database, its start-up warm-up done: the queue is the test's own."""
    def start(engine=None, embedder=None, **settings) -> Site:
        engine = engine or FakeEngine()
        embedder = embedder or FakeEmbedder()
        return Site(serve(engine, embedder, **settings), engine, embedder)
    return start


@pytest.fixture
def site(lumara):
    """The app with a FakeEngine and FakeEmbedder."""
    return lumara()


@pytest.fixture
def gated_site(lumara):
    """The app with a GatedEngine: chat tokens come out only as the test allows them."""
    return lumara(GatedEngine())
