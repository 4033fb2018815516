"""Property-based fuzzing of every JSON endpoint (Hypothesis, the fakes, Flask's test client).

For each generated request — malformed JSON, wrong JSON types, odd and huge Unicode (lone
surrogates as raw bytes, NUL, RTL marks, combining characters, emoji, 1 MB strings), wrong
content types, oversize bodies, ids in URLs that are huge, negative, not numbers or not
ASCII, odd query parameters — these hold:

- never a 5xx; every 4xx is JSON {"error": {"code", "message"}};
- a refused request changed nothing (every table, row for row, before and after);
- the database stays whole: PRAGMA integrity_check is ok, every memory has exactly one
  vector, no vector lacks its memory;
- the app still answers /health.

Reproducible: derandomize=True (the same examples on every run), no example database.
"""

from __future__ import annotations

import json
import urllib.parse
import warnings
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lumara_web.config import MEMORY_TYPES
from lumara_web.memory.validation import NewMemory
from lumara_web.storage import conversation_store, review_store, store
from lumara_web.storage.review_store import RESOLUTIONS

from .helpers import assert_database_whole, assert_json_error, build_app, connect, snapshot
from .strategies import any_char, json_values, long_text, nested, short_odd_text, weighted

# On a failure Hypothesis's pytest plugin imports this (for its patch hint) while reporting,
# where the warnings-as-errors filter turns libcst's DeprecationWarning into an INTERNALERROR
# that hides the failure. Imported once here, quietly, it is cached for that moment.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:  # libcst is not installed: the plugin skips the hint
        pass

MAX_REQUEST = 1_000_000  # default max_request_bytes
# Examples per endpoint: 19 endpoints × 120 = 2,280 requests, ~30 s on a busy two-core box.
EXAMPLES_PER_ENDPOINT = 120

FUZZ = settings(max_examples=EXAMPLES_PER_ENDPOINT, derandomize=True, database=None,
                deadline=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example])


# -- the endpoints ----------------------------------------------------------------------
@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # "{id}" is replaced by a fuzzed id segment
    ids: str | None = None  # the table whose ids are worth aiming at
    fields: tuple[str, ...] = ()  # body fields it takes (a body is always fuzzed for these)
    params: tuple[str, ...] = ()  # query parameters it reads

    @property
    def takes_body(self) -> bool:
        return self.method in ("POST", "PATCH", "DELETE")


MEMORY_FIELDS = ("content", "type", "tags", "metadata")
ENDPOINTS = {
    "memories.add": Endpoint("POST", "/api/memories", fields=MEMORY_FIELDS),
    "memories.check": Endpoint("POST", "/api/memories/check", fields=MEMORY_FIELDS),
    "memories.list": Endpoint("GET", "/api/memories",
                              params=("type", "tag", "limit", "offset")),
    "memories.search": Endpoint("GET", "/api/memories/search",
                                params=("q", "k", "threshold", "type")),
    "memories.get": Endpoint("GET", "/api/memories/{id}", "memories"),
    "memories.patch": Endpoint("PATCH", "/api/memories/{id}", "memories",
                               fields=("content", "type", "tags")),
    "memories.delete": Endpoint("DELETE", "/api/memories/{id}", "memories"),
    "conversations.list": Endpoint("GET", "/api/conversations", params=("limit", "offset")),
    "conversations.get": Endpoint("GET", "/api/conversations/{id}", "conversations"),
    "conversations.rename": Endpoint("PATCH", "/api/conversations/{id}", "conversations",
                                     fields=("title",)),
    "conversations.delete": Endpoint("DELETE", "/api/conversations/{id}", "conversations"),
    "suggestions.list": Endpoint("GET", "/api/suggestions", params=("status",)),
    "suggestions.accept": Endpoint("POST", "/api/suggestions/{id}/accept", "suggestions",
                                   fields=("content", "type", "tags")),
    "suggestions.dismiss": Endpoint("POST", "/api/suggestions/{id}/dismiss", "suggestions"),
    "contradictions.list": Endpoint("GET", "/api/contradictions", params=("status",)),
    "contradictions.resolve": Endpoint("POST", "/api/contradictions/{id}/resolve",
                                       "contradictions", fields=("resolution",)),
    "metrics.page_load": Endpoint("POST", "/api/metrics/page-load", fields=("ms",)),
    "metrics.page": Endpoint("GET", "/metrics", params=("format",)),
    "health": Endpoint("GET", "/health"),
}


# -- strategies: text -------------------------------------------------------------------
sensible_text = st.sampled_from([
    "the kettle is in the left cupboard", "Standup is at nine.", "I like green tea",
    "  padded  ", "Ünïcödé memory ✓", "My sister lives in Lisbon"])


# -- strategies: JSON values ------------------------------------------------------------
SENSIBLE_VALUES = {
    "content": sensible_text,
    "type": st.sampled_from(MEMORY_TYPES),
    "tags": st.lists(st.sampled_from(["work", "home", " Mixed Case ", "tea"]), max_size=3),
    "metadata": st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 9), max_size=2),
    "title": sensible_text,
    "resolution": st.sampled_from(RESOLUTIONS),
    "ms": st.floats(0, 600_000),
}


def field_value(name: str) -> st.SearchStrategy:
    # Mostly sensible, so that a request with one odd field among good ones is common.
    return weighted((3, SENSIBLE_VALUES.get(name, json_values)), (1, json_values))


UNKNOWN_KEYS = st.one_of(st.sampled_from(["id", "Content", "colour", ""]),
                        st.text(any_char, max_size=6))


@st.composite
def objects_for(draw, fields: tuple[str, ...]) -> dict:
    """Objects with each of the endpoint's fields (sensible or not) most of the time, now
    and then an unknown one: most examples get past the first check to the later ones."""
    body = {field: draw(field_value(field)) for field in fields
            if draw(st.integers(0, 9), label=f"send {field}?") < 7}
    if draw(st.integers(0, 19), label="unknown field?") == 0:
        body[draw(UNKNOWN_KEYS)] = draw(json_values)
    return body


def encode_json(value, ascii_only: bool) -> bytes:
    """As a client would send it; ascii_only=False puts lone surrogates in as raw bytes
    (invalid UTF-8), and NaN/Infinity go out as the bare tokens."""
    text = json.dumps(value, ensure_ascii=ascii_only, allow_nan=True)
    return text.encode("utf-8", "surrogatepass")


RAW_BODIES = [
    b"", b" ", b"{", b"}", b"[", b"null", b"true", b"0", b'"x"', b"{}", b"[]",
    b'{"content": NaN}', b'{"content": Infinity}', b'{"ms": -Infinity}', b'{"ms": 1e309}',
    b'{"ms": -1e309}', b'{"content": 1' + b"0" * 5000 + b"}", b'{"content": "x",}',
    b"{'content': 'single quotes'}", b'{"content": "caf\xe9"}', b'{"content": "\xed\xa0\x80"}',
    b'{"content": "\xff\xfe"}', b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00", b"\x00" * 64,
    b'{"content": "a", "content": "b"}', b'{"title": "\\ud800"}', b'{"title": "\\u0000"}',
    b'{"resolution": "\\udfff"}', b'{"tags": ["\\ud83d"]}', b'{"metadata": {"\\ud800": 1}}',
    b"content=hello&type=method", b"--x\r\nContent-Disposition: form-data\r\n\r\n--x--",
]


deep_bodies = st.builds(
    lambda prefix, field, depth, opener: (
        f'{{{prefix}"{field}": {nested(depth, opener)}}}'.encode()),
    st.sampled_from(["", '"content": "ok", ']),
    st.sampled_from(["content", "type", "tags", "metadata", "title", "resolution", "ms", "x"]),
    st.one_of(st.integers(1, 40), st.integers(400, 1_100), st.just(100_000)),
    st.sampled_from(["[", "{"]))


def mutate(raw: bytes, position: int, insert: bytes, cut: int) -> bytes:
    position %= len(raw) + 1
    return raw[:position] + insert + raw[position + cut:]


def bodies_for(endpoint: Endpoint) -> st.SearchStrategy[bytes]:
    objects = objects_for(endpoint.fields)
    return weighted(
        (8, st.builds(encode_json, objects, st.booleans())),
        (2, st.builds(encode_json, json_values, st.booleans())),
        (2, st.sampled_from(RAW_BODIES)),
        (2, deep_bodies),
        (1, st.binary(max_size=64)),
        (2, st.builds(mutate, st.builds(encode_json, objects, st.just(True)),
                      st.integers(0, 400),
                      st.sampled_from([b"", b",", b'"', b"\\", b"\x00", b"\xff", b"]", b"}"]),
                      st.integers(0, 3))),
        # Over max_request_bytes: 413 before anything is parsed.
        (1, st.builds(lambda extra: b'{"content": "' + b"x" * (MAX_REQUEST + extra) + b'"}',
                      st.sampled_from([0, 1, MAX_REQUEST]))),
    )


CONTENT_TYPES = ["application/json"] * 30 + [
    "application/json; charset=utf-8", "application/json; charset=latin-1",
    "APPLICATION/JSON", "application/json;;", "text/plain", "text/json", "application/jsonx",
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "*/*", "",
    None]


# -- strategies: URLs -------------------------------------------------------------------
def quote_text(text: str) -> str:
    return urllib.parse.quote(text.encode("utf-8", "surrogatepass"), safe="")


ODD_IDS = ["0", "-1", "-0", "+1", " 1", "1 ", "1.5", "1e3", "0x1", "abc", "１", "١", "1" * 19,
           "9" * 19, "9" * 20, "1" + "0" * 19, "9" * 5000, "%00", "%2F", "%2e%2e", "%FF",
           "%ED%A0%80", "null", "NaN", "🦄", "%F0%9F%A6%84"]


def id_segments(live: list[int], existing: list[int]) -> st.SearchStrategy[str]:
    """Mostly a live target (a pending suggestion, a memory), else any id, odd or not."""
    # By position, not by value: the strategy must not depend on the database's state,
    # which differs when Hypothesis replays an example.
    def pick(ids: list[int]) -> st.SearchStrategy[str]:
        return st.integers(0, 1_000).map(lambda i: str(ids[i % len(ids)]) if ids else "1")

    return weighted(
        (5, pick(live)),
        (2, pick(existing)),
        (1, st.integers(-5, 60).map(str)),
        (1, st.integers(2**63 - 3, 2**64 + 3).map(str)),
        (2, st.sampled_from(ODD_IDS)),
        (1, st.text(any_char, min_size=1, max_size=6).map(quote_text)),
    )


QUERY_VALUES = ["", "0", "1", "-1", "5", "50", "100", "101", "200", "201", "2.5", "1e3",
                "nan", "inf", "-inf", "0x10", "1_0", "١٢", "9" * 30, "9" * 5000, "all",
                "pending", "accepted", "dismissed", "resolved", "knowledge", "json",
                "prometheus", "html"]


@st.composite
def query_strings(draw, params: tuple[str, ...]) -> str:
    """Each parameter the endpoint reads, most of the time, and now and then another."""
    values = weighted(
        (3, st.sampled_from(QUERY_VALUES).map(quote_text)),
        (3, st.one_of(sensible_text, short_odd_text, long_text(51, 10_001)).map(quote_text)),
        (1, st.sampled_from(["%FF", "%ED%A0%80", "%00", "%", "%G1", "a+b", "&&", "=="])))
    names = [name for name in params if draw(st.integers(0, 9), label=f"{name}?") < 6]
    if draw(st.integers(0, 9), label="other parameter?") == 0:
        names.append(quote_text(draw(st.text(any_char, max_size=5))))
    return "&".join(f"{name}={draw(values)}" for name in names)


ACCEPTS = [None, "text/plain", "text/html", "application/json", "*/*",
           "text/plain;version=0.0.4;q=0.4,*/*;q=0.1", "text/plain;q=nan", "text/plain;q=inf",
           "text/html;q=-1, text/plain;q=2", ";;;,,,", "\u00ff/\u00ff"]


# -- the app, with something to aim at --------------------------------------------------
@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    return build_app(tmp_path_factory.mktemp("fuzz") / "data")


def ensure_targets(app) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Top up what earlier examples used up (a deleted memory, an accepted suggestion), so
    every example has live targets; returns the live ids and all ids of each kind."""
    services = app.extensions["lumara"]
    conn = connect(app)
    try:
        def add_memory(content):
            return services.memories.add(conn, NewMemory(content, "knowledge", ["seed"], {}))[0]

        while store.count_memories(conn) < 3:
            add_memory(f"seed memory number {store.count_memories(conn)} about tea")
        if not review_store.list_suggestions(conn, status="pending"):
            review_store.add_suggestion(conn, content="The user drinks green tea",
                                        type="knowledge", tags=["drinks"], confidence=0.7)
        if not review_store.list_contradictions(conn, status="pending"):
            older = add_memory("the user lives in Bergen near the fish market")
            newer = add_memory("the user lives in Oslo near the royal palace")
            review_store.add_contradiction(conn, memory_id=newer.id,
                                           existing_memory_id=older.id, similarity=0.8,
                                           confidence=0.9, explanation="two cities")
        if not conversation_store.list_conversations(conn)[0]:
            conversation = conversation_store.create_conversation(conn, "Tea talk")
            conversation_store.add_message(conn, conversation.id, "user", "Do I like tea?")
            conversation_store.add_message(conn, conversation.id, "assistant", "**Yes.**")
        def ids(sql):
            return [row[0] for row in conn.execute(sql)]

        every = {table: ids(f"SELECT id FROM {table} ORDER BY id")
                 for table in ("memories", "conversations", "suggestions", "contradictions")}
        live = {**every,
                "suggestions": ids("SELECT id FROM suggestions WHERE status = 'pending'"),
                "contradictions": [item.id for item in review_store.list_contradictions(conn)]}
        return live, every
    finally:
        conn.close()


def send(app, endpoint: Endpoint, data) -> tuple:
    live, every = ensure_targets(app)
    path = endpoint.path
    if "{id}" in path:
        segment = data.draw(id_segments(live[endpoint.ids], every[endpoint.ids]), label="id")
        path = path.replace("{id}", segment)
    query = data.draw(query_strings(endpoint.params), label="query")
    if query:
        path = f"{path}?{query}"
    body, content_type = None, None
    if endpoint.takes_body or data.draw(st.integers(0, 9), label="body on GET?") == 0:
        body = data.draw(bodies_for(endpoint), label="body")
        content_type = data.draw(st.sampled_from(CONTENT_TYPES), label="content type")
    headers = {}
    if endpoint.path == "/metrics":
        accept = data.draw(st.sampled_from(ACCEPTS), label="accept")
        if accept is not None:
            headers["Accept"] = accept
    method = data.draw(st.sampled_from([endpoint.method] * 20 + ["GET", "POST", "PUT", "PATCH",
                                                                 "DELETE", "OPTIONS"]),
                       label="method")
    kwargs = {"method": method, "headers": headers}
    if body is not None:
        kwargs["data"] = body
        if content_type is not None:
            kwargs["content_type"] = content_type
    before = snapshot(app)
    response = app.test_client().open(path, **kwargs)
    return response, before


@pytest.mark.parametrize("name", ENDPOINTS)
@FUZZ
@given(data=st.data())
def test_no_request_breaks_the_api(fuzz_app, name, data):
    response, before = send(fuzz_app, ENDPOINTS[name], data)
    status = response.status_code
    assert status < 500, response.get_data()[:1000]
    # What the examples reached (pytest --hypothesis-show-statistics lists it).
    event(f"{status} {(response.get_json(silent=True) or {}).get('error', {}).get('code', '')}")
    if status >= 400:
        # Pages (/metrics) answer a wrong method or URL in HTML; their bad input is JSON.
        if ENDPOINTS[name].path.startswith(("/api/", "/health")) or status == 400:
            assert_json_error(response)
        assert snapshot(fuzz_app) == before, f"a refused request ({status}) changed the data"
    assert_database_whole(fuzz_app)
    health = fuzz_app.test_client().get("/health")
    assert health.status_code == 200, health.get_data()[:300]
