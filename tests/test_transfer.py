"""Export and import (/api/export, /api/import) with the FakeEmbedder, and one near-duplicate
check with the real model. The fake is a bag of words: texts with the same words have
cosine 1; n words sharing m have cosine about m/n."""

from __future__ import annotations

import html
import io
import json
import re

import numpy as np
import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app

from lumara_web import create_app
from lumara_web.memory import transfer

from .fakes import FakeEmbedder
from .helpers import WAIT, import_document

FACT = "lighthouse keeper paints railing blue every spring morning before breakfast"
OTHER = "quantum chromodynamics describes gluons binding quarks inside protons"
THIRD = "grandmother bakes rye bread with caraway seeds on sundays"


@pytest.fixture
def make_client(tmp_path, make_app, engine):
    def make(name: str, embedder=None):
        return make_app(data_dir=tmp_path / name, engine=engine,
                        embedder=embedder or FakeEmbedder()).test_client()
    return make


def add(client, content, **fields):
    response = client.post("/api/memories", json={"content": content, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["memory"]


def export(client, **params):
    response = client.get("/api/export", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def import_(client, document, status=200):
    """The import's result (status 200: the job ran to the end), or the refusal's body."""
    if status == 200:
        return import_document(client, document)
    response = client.post("/api/import", json=document)
    assert response.status_code == status, response.get_json()
    return response.get_json()


def listed(client):
    return client.get("/api/memories", query_string={"limit": 200}).get_json()["items"]


def document(*memories, model="fake/bag-of-words", dimensions=384):
    return {"format": "lumara-export", "version": 1, "embedding_model": model,
            "dimensions": dimensions, "memories": list(memories)}


def test_export_then_import_into_a_fresh_app_round_trips(make_client):
    source = make_client("a")
    add(source, FACT, type="experience", tags=["sea", "paint"], metadata={"ref": 7})
    add(source, OTHER, type="knowledge")
    response = export(source)
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="lumara-export-')
    body = response.get_json()
    assert body["format"] == "lumara-export" and body["version"] == 1
    assert body["embedding_model"] == "fake/bag-of-words" and body["dimensions"] == 384
    assert all("embedding" not in memory for memory in body["memories"])

    target = make_client("b")
    result = import_(target, body)
    assert result == {"imported": 2, "skipped_duplicates": [], "reembedded": True}
    fields = ("content", "type", "tags", "metadata", "source", "created_at", "updated_at")
    before = sorted((tuple(str(m[f]) for f in fields) for m in listed(source)))
    after = sorted((tuple(str(m[f]) for f in fields) for m in listed(target)))
    assert before == after
    assert target.get("/api/memories/search", query_string={"q": FACT}).get_json()[
        "results"][0]["memory"]["content"] == FACT


def test_importing_the_same_file_twice_adds_nothing_new(make_client):
    source = make_client("a")
    first, second = add(source, FACT), add(source, OTHER)
    body = export(source, vectors="1").get_json()
    result = import_(source, body)
    assert result["imported"] == 0
    assert {(s["index"], s["existing_id"]) for s in result["skipped_duplicates"]} == {
        (0, first["id"]), (1, second["id"])}
    assert len(listed(source)) == 2


def test_one_bad_memory_in_the_middle_writes_nothing(make_client):
    client = make_client("a")
    body = document({"content": FACT}, {"content": OTHER, "tags": "not a list"},
                    {"content": THIRD})
    error = import_(client, body, status=400)["error"]
    assert error["code"] == "invalid_tags"
    assert error["message"].startswith("memories[1]: tags")
    assert listed(client) == []


@pytest.mark.parametrize("memory, code", [
    ({"content": "   "}, "empty_content"),
    ({"content": FACT, "type": "dream"}, "invalid_type"),
    ({"content": FACT, "created_at": "yesterday"}, "invalid_timestamp"),
    ({"content": FACT, "id": 3}, "unknown_field"),
    ({"content": FACT, "embedding": [0.1] * 10}, "invalid_embedding"),
    ({"content": FACT, "embedding": [0.1] * 383 + ["x"]}, "invalid_embedding"),
    ({"content": FACT, "embedding": [0.1] * 383 + [1e39]}, "invalid_embedding"),
])
def test_each_memory_is_validated(make_client, memory, code):
    client = make_client("a")
    error = import_(client, document({"content": OTHER}, memory), status=400)["error"]
    assert error["code"] == code and "memories[1]" in error["message"]
    assert listed(client) == []


def test_non_finite_numbers_are_refused(make_client):
    client = make_client("a")
    raw = ('{"format": "lumara-export", "version": 1, "memories": [{"content": "x", '
           '"embedding": [NaN]}]}')
    response = client.post("/api/import", data=raw, content_type="application/json")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("change, code", [
    ({"format": "something-else"}, "invalid_format"),
    ({"version": 2}, "unsupported_version"),
    ({"memories": {}}, "invalid_memories"),
])
def test_the_document_itself_is_validated(make_client, change, code):
    client = make_client("a")
    error = import_(client, {**document({"content": FACT}), **change}, status=400)["error"]
    assert error["code"] == code


def test_a_foreign_model_id_means_the_contents_are_embedded_again(make_client):
    embedder = FakeEmbedder()
    client = make_client("a", embedder)
    foreign = [1.0] + [0.0] * 383
    result = import_(client, document({"content": FACT, "embedding": foreign},
                                      model="someone/else"))
    assert result["reembedded"] is True and result["imported"] == 1
    exported = export(client, vectors="1").get_json()["memories"][0]["embedding"]
    assert np.allclose(exported, embedder.vector(FACT), atol=1e-6)


def test_vectors_from_the_same_model_are_used_as_given(make_client):
    embedder = FakeEmbedder()
    client = make_client("a", embedder)
    given = FakeEmbedder().vector(OTHER).tolist()  # not FACT's vector: proves it was kept
    result = import_(client, document({"content": FACT, "embedding": given}))
    assert result == {"imported": 1, "skipped_duplicates": [], "reembedded": False}
    assert FACT not in embedder.texts_embedded
    exported = export(client, vectors="1").get_json()["memories"][0]["embedding"]
    assert np.allclose(exported, given, atol=1e-6)


def test_duplicates_within_the_file_are_imported_once(make_client):
    client = make_client("a")
    result = import_(client, document({"content": FACT}, {"content": "  " + FACT.upper()},
                                      {"content": OTHER},
                                      {"content": FACT.replace(" ", "\n  ")}))
    assert result["imported"] == 2
    first_id = next(m["id"] for m in listed(client) if m["content"] == FACT)
    assert [(s["index"], s["existing_id"]) for s in result["skipped_duplicates"]] == [
        (1, first_id), (3, first_id)]


def test_timestamps_and_source_are_kept_or_defaulted(make_client):
    client = make_client("a")
    import_(client, document({"content": FACT, "created_at": "2024-01-02T03:04:05+01:00",
                              "updated_at": "2024-02-03T00:00:00Z", "source": "chat"},
                             {"content": OTHER}))
    by_content = {m["content"]: m for m in listed(client)}
    assert by_content[FACT]["created_at"] == "2024-01-02T02:04:05.000Z"
    assert by_content[FACT]["updated_at"] == "2024-02-03T00:00:00.000Z"
    assert by_content[FACT]["source"] == "chat"
    assert by_content[OTHER]["source"] == "import"


def test_size_limits(make_client, monkeypatch):
    client = make_client("a")
    # Bigger than the app-wide 1 MB request limit, but accepted on this route.
    padding = {"content": FACT, "metadata": {"note": "x" * 3000}}
    big = document(*[{**padding, "content": f"{FACT} {i}"} for i in range(400)])
    result = import_(client, big)
    assert result["imported"] + len(result["skipped_duplicates"]) == 400
    monkeypatch.setattr(transfer, "MAX_IMPORT_MEMORIES", 2)
    error = import_(client, document(*[{"content": OTHER}] * 3), status=400)["error"]
    assert error["code"] == "too_many_memories"
    monkeypatch.setattr(transfer, "MAX_IMPORT_BYTES", 1000)
    response = client.post("/api/import", json=document({"content": "y" * 2000}))
    assert response.status_code == 413


def test_markdown_export_groups_by_type_and_escapes_content(make_client):
    client = make_client("a")
    add(client, "# Not a heading [click](http://evil.example) <b>x</b>", type="method")
    add(client, "line one\n## forged\n    code?", type="knowledge", tags=["a_b"])
    response = export(client, format="markdown")
    assert response.headers["Content-Type"] == "text/markdown; charset=utf-8"  # said once
    assert response.headers["Content-Disposition"].endswith('.md"')
    text = response.get_data(as_text=True)
    assert "## Knowledge (1)" in text and "## Method (1)" in text
    assert text.index("## Knowledge") < text.index("## Method")
    assert r"- \# Not a heading \[click](http://evil.example) \<b>x\</b>" in text
    assert "  \\## forged" in text
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == ["# Lumara memories", "## Knowledge (1)", "## Method (1)"]


MARKUP_LOOKALIKES = [
    "# x [a](http://e) <script>", "![i](http://e/i.png)", "- item *em* `code`",
    "> quote\n1. one", "[a]: http://e\n[a]", "2020. A good year", "Title\n===", "---",
    "* * *", "+ plus", "1) first", "~~~\ncode", "use **bold** and __bold__", "x_y_ *a*b",
    "a line that ends in a backslash\\", "&amp; &#42;", "<http://example.com>",
    "[a multi-line\nlink](http://e)",
]
PLAIN = [
    "Ana's birthday is 2024-05-03 (Friday).", "5 * 3 = 15", "C:\\Users\\ana",
    "snake_case_name", "3 < 5 & 4 > 2", "Tom & Jerry!", "price: $5 (approx.) - maybe",
    "a [note] in brackets", "issue #42, 50% done; see p. 3", "1.5 kg of flour",
]


def rendered_text(markdown: str) -> tuple[str, str]:
    """What a CommonMark renderer shows for `markdown`: (plain text, HTML)."""
    markdown_it = pytest.importorskip("markdown_it")
    rendered = markdown_it.MarkdownIt("commonmark").render(markdown)
    return html.unescape(re.sub(r"<[^>]+>", "", rendered)).strip(), rendered


@pytest.mark.parametrize("content", MARKUP_LOOKALIKES + PLAIN)
def test_escaped_content_renders_as_its_own_text(content):
    """Through a CommonMark renderer: one paragraph showing exactly the text, no markup."""
    text, rendered = rendered_text(transfer.escape_markdown(content))
    assert text == content
    assert rendered.startswith("<p>") and rendered.count("<p>") == 1, rendered
    assert set(re.findall(r"<(\w+)", rendered)) == {"p"}, rendered


@pytest.mark.parametrize("content", PLAIN)
def test_plain_text_is_left_as_it_is(content):
    """Dates, apostrophes, lone symbols: the export reads as the text, no stray backslashes."""
    assert transfer.escape_markdown(content) == content


def test_the_markdown_export_shows_each_memory_as_written(make_client):
    client = make_client("a")
    for content in MARKUP_LOOKALIKES[:6]:
        add(client, content)
    text = export(client, format="markdown").get_data(as_text=True)
    _, rendered = rendered_text(text)
    items = re.findall(r"<li>(.*?)<em>", rendered, re.DOTALL)
    shown = sorted(html.unescape(re.sub(r"<[^>]+>", "", item)).strip() for item in items)
    assert shown == sorted(MARKUP_LOOKALIKES[:6])


def test_unknown_export_format_is_refused(make_client):
    response = make_client("a").get("/api/export", query_string={"format": "xml"})
    assert response.status_code == 400


def test_a_reworded_memory_is_skipped_with_the_real_model(tmp_path, real_engine,
                                                          real_embedder):
    client = create_app({"data_dir": str(tmp_path / "real"), "embedder": real_embedder,
                         "engine": real_engine}).test_client()
    existing = add(client, "My sister Anna lives in Lisbon.")
    result = import_(client, document({"content": "My sister Anna lives in Lisbon, Portugal."},
                                      {"content": "I repaired the bicycle's rear brake."},
                                      model="someone/else"))
    assert result["imported"] == 1 and result["reembedded"] is True
    [skipped] = result["skipped_duplicates"]
    assert skipped["index"] == 0 and skipped["existing_id"] == existing["id"]
    assert skipped["similarity"] >= 0.85


def test_a_chunked_import_may_exceed_the_app_wide_limit_but_not_its_own(make_client,
                                                                         monkeypatch):
    """A body without Content-Length (chunked) is capped too: at the import limit here."""
    app = make_client("a").application

    def post_chunked(raw: bytes) -> int:
        environ = EnvironBuilder(path="/api/import", method="POST",
                                 input_stream=io.BytesIO(raw),
                                 content_type="application/json").get_environ()
        # As a chunked request arrives from the server: no length, a terminated stream.
        del environ["CONTENT_LENGTH"]
        environ["wsgi.input_terminated"] = True
        _, status, _ = run_wsgi_app(app, environ, buffered=True)
        return int(status.split()[0])

    note = {"note": "x" * 3000}
    big = document(*[{"content": f"{FACT} {i}", "metadata": note} for i in range(400)])
    raw = json.dumps(big).encode()
    assert len(raw) > 1_000_000
    assert post_chunked(raw) == 202
    app.extensions["lumara"].import_job.thread.join(WAIT * 12)
    monkeypatch.setattr(transfer, "MAX_IMPORT_BYTES", 1000)
    assert post_chunked(raw) == 413


def history_of(client, memory_id):
    response = client.get(f"/api/memories/{memory_id}/history")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["versions"]


def test_earlier_versions_round_trip_when_asked_for(make_client):
    source = make_client("a")
    memory = add(source, FACT, type="experience", tags=["sea"])
    assert source.patch(f"/api/memories/{memory['id']}", json={"content": OTHER}).status_code == 200
    assert source.patch(f"/api/memories/{memory['id']}",
                        json={"tags": ["sea", "lab"]}).status_code == 200
    versions = history_of(source, memory["id"])
    assert [v["version"] for v in versions] == [2, 1] and versions[1]["content"] == FACT

    assert "versions" not in export(source).get_json()["memories"][0]  # only when asked for
    body = export(source, versions="1").get_json()
    assert body["version"] == 1  # an optional field: files without it still import
    assert body["memories"][0]["versions"] == versions

    target = make_client("b")
    assert import_(target, body)["imported"] == 1
    [imported] = listed(target)
    assert (imported["content"], imported["tags"]) == (OTHER, ["sea", "lab"])
    assert history_of(target, imported["id"]) == versions
    # A later edit continues the numbering, and an old version can be restored.
    assert target.patch(f"/api/memories/{imported['id']}",
                        json={"content": THIRD}).status_code == 200
    assert [v["version"] for v in history_of(target, imported["id"])] == [3, 2, 1]
    restored = target.post(f"/api/memories/{imported['id']}/restore", json={"version": 1})
    assert restored.status_code == 200 and restored.get_json()["memory"]["content"] == FACT

    # Imported again, the memory is a duplicate: skipped, its versions not added twice.
    assert import_(source, body)["imported"] == 0
    assert history_of(source, memory["id"]) == versions


@pytest.mark.parametrize("version, code, where", [
    ({"version": 0}, "invalid_versions", "version must be"),
    ({"version": 1}, "invalid_versions", "version 1 appears twice"),
    ({"change": "undo"}, "invalid_versions", "change must be"),
    ({"replaced_at": "yesterday"}, "invalid_timestamp", "replaced_at"),
    ({"replaced_at": None}, "invalid_timestamp", "replaced_at is required"),
    ({"replaced_at": "0001-01-01T00:00:00+14:00"}, "invalid_timestamp", "outside the years"),
    ({"replaced_at": "9999-12-31T23:59:59-14:00"}, "invalid_timestamp", "outside the years"),
    ({"version": 10**9 + 1}, "invalid_versions", "from 1 to 1,000,000,000"),
    ({"version": 2**63 - 1}, "invalid_versions", "from 1 to 1,000,000,000"),
    ({"version": 2**63}, "invalid_versions", "from 1 to 1,000,000,000"),
    ({"tags": "sea"}, "invalid_tags", "tags"),
    ({"content": "  "}, "empty_content", "content"),
    ({"colour": "blue"}, "unknown_field", "colour"),
])
def test_each_version_is_validated_and_a_bad_one_imports_nothing(make_client, version, code,
                                                                  where):
    client = make_client("a")
    good = {"version": 1, "content": OTHER, "type": "knowledge", "tags": [], "metadata": {},
            "replaced_at": "2026-01-02T03:04:05Z", "change": "edit"}
    bad = {**good, "version": 2, **version}
    body = document({"content": THIRD},
                    {"content": FACT, "versions": [good, {k: v for k, v in bad.items()
                                                          if v is not None}]})
    error = import_(client, body, status=400)["error"]
    assert error["code"] == code, error
    assert error["message"].startswith("memories[1]: versions[1]: "), error
    assert where in error["message"] and "Nothing was imported" in error["message"]
    assert listed(client) == []


@pytest.mark.parametrize("field", ["created_at", "updated_at"])
@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_time_outside_the_calendar_in_utc_is_refused(make_client, field, moment):
    client = make_client("a")
    error = import_(client, document({"content": FACT, field: moment}), status=400)["error"]
    assert error["code"] == "invalid_timestamp" and field in error["message"], error
    assert listed(client) == []


def test_the_largest_version_number_still_leaves_room_for_edits(make_client):
    from lumara_web.memory.transfer import MAX_IMPORTED_VERSION as MAX_VERSION

    client = make_client("a")
    version = {"version": MAX_VERSION, "content": OTHER, "replaced_at": "2026-01-02T03:04:05Z"}
    assert import_(client, document({"content": FACT, "versions": [version]}))["imported"] == 1
    [memory] = listed(client)
    for content in (THIRD, FACT):  # each edit numbers the next version, as a whole number
        assert client.patch(f"/api/memories/{memory['id']}",
                            json={"content": content}).status_code == 200
    assert [v["version"] for v in history_of(client, memory["id"])] == \
        [MAX_VERSION + 2, MAX_VERSION + 1, MAX_VERSION]
    restored = client.post(f"/api/memories/{memory['id']}/restore",
                           json={"version": MAX_VERSION})
    assert restored.status_code == 200 and restored.get_json()["memory"]["content"] == OTHER


def test_a_memory_with_too_many_versions_is_refused_whole(make_client):
    from lumara_web.memory.transfer import MAX_IMPORTED_VERSIONS

    client = make_client("a")
    versions = [{"version": n, "content": f"Note, version {n}.",
                 "replaced_at": "2026-01-02T03:04:05Z"}
                for n in range(1, MAX_IMPORTED_VERSIONS + 2)]
    error = import_(client, document({"content": FACT, "versions": versions}),
                    status=400)["error"]
    assert error["code"] == "too_many_versions" and "10,000" in error["message"], error
    assert listed(client) == []
    # At the cap it imports, every version kept.
    assert import_(client, document({"content": FACT, "versions": versions[:-1]}))[
        "imported"] == 1
    [memory] = listed(client)
    assert len(history_of(client, memory["id"])) == MAX_IMPORTED_VERSIONS


def test_a_files_memories_are_compared_with_the_ones_kept_before_them_in_tiles(monkeypatch):
    """KeptNeighbours in small tiles finds exactly the closest earlier kept rows brute force
    finds, at most `limit` of them."""
    from lumara_web.memory import transfer

    rng = np.random.default_rng(4)
    base = rng.standard_normal((4, 16))  # four clusters of five alike rows
    vectors = base[np.arange(20) % 4] + 0.3 * rng.standard_normal((20, 16))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    cosines = vectors @ vectors.T
    monkeypatch.setattr(transfer, "TILE", 7)  # tiles that cut through the pairs
    kept_rows = [i for i in range(len(vectors)) if i % 3 != 1]  # some rows not kept
    for limit in (len(vectors), 2, 1):
        neighbours = transfer.KeptNeighbours(vectors, 0.9)
        found, expected = [], []
        for i in range(len(vectors)):
            found.append([j for j, _ in neighbours.near(i, limit)])
            expected.append(sorted((j for j in range(i)
                                    if j in kept_rows and cosines[i, j] >= 0.9),
                                   key=lambda j: -cosines[i, j])[:limit])
            if i in kept_rows:
                neighbours.keep(i)
        assert found == expected
        if limit == len(vectors):
            assert sum(len(rows) > 1 for rows in found) >= 3  # lists the limits below cut
