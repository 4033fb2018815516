"""The memories JSON API and /health, end to end through Flask with the FakeEmbedder.

FakeEmbedder is a bag of words: two texts with n distinct words sharing m have cosine of
about m/n. The texts (FACT, FACT_VARIANT, UNRELATED in tests/helpers.py) were chosen so
each lands well inside its band; tests assert the similarity before they assert the
classification that depends on it.
"""

from __future__ import annotations

import re

import pytest

from lumara_web.storage import db

from .helpers import FACT, FACT_VARIANT, UNRELATED, add, result_ids, search

DUPLICATE_AT = 0.85  # default duplicate_threshold
CANDIDATE_AT = 0.70  # default contradiction_threshold


# -- helpers ----------------------------------------------------------------------------
def list_memories(client, **params):
    response = client.get("/api/memories", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def db_counts(app):
    conn = db.connect(app.extensions["lumara"].settings["db_path"])
    try:
        return (conn.execute("SELECT count(*) FROM memories").fetchone()[0],
                conn.execute("SELECT count(*) FROM memory_vectors").fetchone()[0])
    finally:
        conn.close()


def words(prefix, count):
    """`count` distinct words that share nothing with other prefixes."""
    return " ".join(f"{prefix}{i}" for i in range(count))


def test_fixture_texts_land_in_their_bands(embedder):
    # Guards the premise of the findings tests: if the fake changes, fail here first.
    fact = embedder.vector(FACT)
    assert CANDIDATE_AT + 0.03 < float(fact @ embedder.vector(FACT_VARIANT)) < DUPLICATE_AT - 0.03
    assert float(fact @ embedder.vector(UNRELATED)) < 0.3


# -- POST /api/memories -----------------------------------------------------------------
def test_add_returns_the_stored_memory_with_defaults_and_normalized_fields(client):
    response = client.post("/api/memories", json={
        "content": "  \n Tea is best at 80 °C \t ",
        "tags": [" Work ", "WORK", "Deep   Focus", "deep focus", "tea"],
        "metadata": {"source_url": "https://example.org", "n": 3}})

    assert response.status_code == 201
    body = response.get_json()
    assert list(body) == ["memory", "duplicates", "contradiction_candidates"]
    memory = body["memory"]
    assert memory["content"] == "Tea is best at 80 °C"  # stripped, inner text untouched
    assert memory["type"] == "knowledge"  # the default
    assert memory["tags"] == ["work", "deep focus", "tea"]  # lower, collapsed, de-duplicated
    assert memory["metadata"] == {"source_url": "https://example.org", "n": 3}
    assert memory["source"] == "api"
    assert isinstance(memory["id"], int)
    assert memory["created_at"] == memory["updated_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", memory["created_at"])
    assert body["duplicates"] == [] and body["contradiction_candidates"] == []
    # What came back is what was stored.
    assert client.get(f"/api/memories/{memory['id']}").get_json() == {"memory": memory}


@pytest.mark.parametrize("memory_type", ["knowledge", "experience", "method"])
def test_add_accepts_every_type(client, memory_type):
    assert add(client, "boil water first", type=memory_type)["memory"]["type"] == memory_type


def test_adding_the_same_text_again_reports_a_duplicate(client):
    first = add(client, FACT)["memory"]

    body = add(client, FACT)  # added anyway: findings are advice, not refusal

    assert body["memory"]["id"] != first["id"]
    assert [hit["memory"]["id"] for hit in body["duplicates"]] == [first["id"]]
    assert body["duplicates"][0]["memory"] == first
    assert body["duplicates"][0]["similarity"] == pytest.approx(1.0, abs=1e-3)
    assert body["contradiction_candidates"] == []


def test_a_text_sharing_most_words_is_a_contradiction_candidate(client):
    first = add(client, FACT)["memory"]
    add(client, UNRELATED)

    body = add(client, FACT_VARIANT)

    assert body["duplicates"] == []
    [candidate] = body["contradiction_candidates"]  # the unrelated memory is in no band
    assert CANDIDATE_AT <= candidate["similarity"] < DUPLICATE_AT
    assert candidate["memory"]["id"] == first["id"]


def test_an_unrelated_text_has_no_findings(client):
    add(client, FACT)
    body = add(client, UNRELATED)
    assert body["duplicates"] == [] and body["contradiction_candidates"] == []


# -- POST /api/memories/check -----------------------------------------------------------
def test_check_reports_findings_like_add_but_writes_nothing(client, app):
    first = add(client, FACT)["memory"]
    before = list_memories(client)

    duplicate = client.post("/api/memories/check", json={"content": f"  {FACT} "})
    candidate = client.post("/api/memories/check",
                            json={"content": FACT_VARIANT, "type": "method", "tags": ["x"]})

    assert duplicate.status_code == 200 and candidate.status_code == 200
    assert list(duplicate.get_json()) == ["duplicates", "contradiction_candidates"]
    [dup] = duplicate.get_json()["duplicates"]
    assert dup["memory"] == first and dup["similarity"] == pytest.approx(1.0, abs=1e-3)
    [cand] = candidate.get_json()["contradiction_candidates"]
    assert CANDIDATE_AT <= cand["similarity"] < DUPLICATE_AT
    assert cand["memory"]["id"] == first["id"]
    assert candidate.get_json()["duplicates"] == []
    # Nothing was stored: same total, same ids, same rows and vectors.
    assert list_memories(client) == before
    assert db_counts(app) == (1, 1)


def test_check_on_an_empty_store_finds_nothing(client):
    response = client.post("/api/memories/check", json={"content": FACT})
    assert response.status_code == 200
    assert response.get_json() == {"duplicates": [], "contradiction_candidates": []}
    assert list_memories(client)["total"] == 0


# -- GET /api/memories ------------------------------------------------------------------
@pytest.fixture
def listed(client):
    """Seven memories of mixed types and tags, oldest first."""
    specs = [("first note", "knowledge", ["work"]), ("second note", "method", ["home"]),
             ("third note", "knowledge", ["Work", "tea"]), ("fourth note", "experience", []),
             ("fifth note", "method", ["work"]), ("sixth note", "knowledge", []),
             ("seventh note", "knowledge", ["work"])]
    return [add(client, content, type=type_, tags=tags)["memory"]
            for content, type_, tags in specs]


def test_list_is_newest_first_with_total_and_paging_fields(client, listed):
    body = list_memories(client)
    assert [m["id"] for m in body["items"]] == [m["id"] for m in reversed(listed)]
    assert body["items"][0] == listed[-1]  # whole memories, not summaries
    assert (body["total"], body["limit"], body["offset"]) == (7, 50, 0)


def test_list_on_an_empty_store(client):
    assert list_memories(client) == {"items": [], "total": 0, "limit": 50, "offset": 0}


def test_list_filters_by_type(client, listed):
    body = list_memories(client, type="method")
    assert [m["content"] for m in body["items"]] == ["fifth note", "second note"]
    assert body["total"] == 2
    assert list_memories(client, type="all")["total"] == 7  # "all" means no filter


def test_list_filters_by_tag_case_and_space_insensitively(client, listed):
    body = list_memories(client, tag="  WORK ")
    assert [m["content"] for m in body["items"]] == [
        "seventh note", "fifth note", "third note", "first note"]
    assert body["total"] == 4
    assert list_memories(client, tag="work", type="method")["total"] == 1  # filters combine
    assert list_memories(client, tag="nothing-has-this")["total"] == 0


def test_list_pages_with_limit_and_offset(client, listed):
    newest_first = [m["id"] for m in reversed(listed)]
    pages = [list_memories(client, limit=3, offset=offset) for offset in (0, 3, 6, 9)]

    assert [[m["id"] for m in page["items"]] for page in pages] == [
        newest_first[0:3], newest_first[3:6], newest_first[6:7], []]
    assert [(p["total"], p["limit"], p["offset"]) for p in pages] == [
        (7, 3, 0), (7, 3, 3), (7, 3, 6), (7, 3, 9)]  # total counts all matches, not the page
    filtered = list_memories(client, type="knowledge", limit=2, offset=1)
    assert [m["content"] for m in filtered["items"]] == ["sixth note", "third note"]
    assert filtered["total"] == 4


# -- GET /api/memories/search -----------------------------------------------------------
def test_search_response_shape(client):
    stored = add(client, FACT)["memory"]
    body = search(client, q=FACT)
    assert list(body) == ["results", "took_ms", "timings"]
    assert body["results"] == [{"memory": stored, "similarity": pytest.approx(1.0, abs=1e-3)}]
    assert isinstance(body["took_ms"], float) and body["took_ms"] >= 0
    assert set(body["timings"]) == {"embed_ms", "search_ms"}


def test_search_on_an_empty_store_returns_no_results(client):
    assert search(client, q=FACT)["results"] == []


@pytest.fixture
def graded(client):
    """Memories sharing 10, 8, 6, 4, 2 and 0 of the query's 10 words (added out of order)."""
    query = words("q", 10).split()
    memories = {}
    for shared in (4, 10, 0, 8, 2, 6):
        text = " ".join(query[:shared] + words(f"x{shared}_", 10 - shared).split())
        memories[shared] = add(client, text.strip())["memory"]
    return " ".join(query), memories


def test_search_results_are_sorted_by_similarity(client, graded):
    query, memories = graded
    body = search(client, q=query, threshold=-1)

    similarities = [hit["similarity"] for hit in body["results"]]
    assert similarities == sorted(similarities, reverse=True)
    assert result_ids(body) == [memories[n]["id"] for n in (10, 8, 6, 4, 2, 0)]
    assert similarities[0] == pytest.approx(1.0, abs=1e-3)


def test_search_k_limits_the_count(client, graded):
    query, memories = graded
    assert result_ids(search(client, q=query, k=2, threshold=-1)) == [
        memories[10]["id"], memories[8]["id"]]
    assert len(search(client, q=query, k=1, threshold=-1)["results"]) == 1
    assert len(search(client, q=query, k=100, threshold=-1)["results"]) == 6


def test_search_threshold_filters_out_less_similar_memories(client, graded):
    query, memories = graded
    everything = search(client, q=query, threshold=-1)["results"]
    assert len(everything) == 6
    body = search(client, q=query, threshold=0.5)

    assert body["results"]  # the filter is not vacuous in either direction
    assert all(hit["similarity"] >= 0.5 for hit in body["results"])
    expected = [hit["memory"]["id"] for hit in everything if hit["similarity"] >= 0.5]
    assert result_ids(body) == expected
    assert len(expected) < len(everything)
    # The exact match alone clears 0.99; the 8-of-10 memory (≈0.8) does not.
    assert result_ids(search(client, q=query, threshold=0.99)) == [memories[10]["id"]]


def test_search_default_threshold_hides_unrelated_memories(client):
    add(client, UNRELATED)
    assert search(client, q=FACT)["results"] == []  # default threshold 0.3
    assert len(search(client, q=FACT, threshold=-1)["results"]) == 1


def test_search_type_filter_returns_k_of_that_type_even_when_others_are_closer(client):
    query = words("q", 10)
    # Five knowledge memories close to the query, three method memories far from it.
    close = [add(client, f"{query} extra{i}")["memory"]["id"] for i in range(5)]
    far = [add(client, f"{words(f'far{i}_', 9)} q0", type="method")["memory"]["id"]
           for i in range(3)]
    assert set(result_ids(search(client, q=query, k=3, threshold=-1))) <= set(close)

    body = search(client, q=query, k=3, threshold=-1, type="method")

    # Filtering after the top-k would have left nothing: every nearest memory is knowledge.
    assert sorted(result_ids(body)) == sorted(far)
    assert {hit["memory"]["type"] for hit in body["results"]} == {"method"}
    knowledge = search(client, q=query, k=10, threshold=-1, type="knowledge")
    assert sorted(result_ids(knowledge)) == sorted(close)
    assert len(search(client, q=query, k=2, threshold=-1, type="method")["results"]) == 2
    assert len(search(client, q=query, k=10, threshold=-1, type="all")["results"]) == 8
    assert search(client, q=query, threshold=-1, type="experience")["results"] == []


# -- GET /api/memories/<id> -------------------------------------------------------------
def test_get_returns_one_memory(client):
    stored = add(client, FACT, type="experience", tags=["sea"], metadata={"a": [1, 2]})
    response = client.get(f"/api/memories/{stored['memory']['id']}")
    assert response.status_code == 200
    assert response.get_json() == {"memory": stored["memory"]}


# -- PATCH /api/memories/<id> -----------------------------------------------------------
def test_patch_content_re_embeds_and_search_follows(client, embedder):
    old_text = "alpha bravo charlie delta echo"
    new_text = "kilo lima mike november oscar"
    memory = add(client, old_text)["memory"]
    neighbour = add(client, f"{old_text} foxtrot")["memory"]  # second-best for the old text
    assert result_ids(search(client, q=old_text))[0] == memory["id"]

    response = client.patch(f"/api/memories/{memory['id']}", json={"content": f"  {new_text} "})

    assert response.status_code == 200
    patched = response.get_json()["memory"]
    assert patched["content"] == new_text
    assert patched["id"] == memory["id"] and patched["created_at"] == memory["created_at"]
    assert patched["type"] == memory["type"] and patched["tags"] == memory["tags"]
    assert [new_text] in embedder.calls  # the new text went through the model
    assert result_ids(search(client, q=new_text))[0] == memory["id"]
    assert search(client, q=new_text)["results"][0]["similarity"] == pytest.approx(1, abs=1e-3)
    old_hits = search(client, q=old_text, threshold=-1)["results"]
    assert old_hits[0]["memory"]["id"] == neighbour["id"]  # the old text no longer ranks it first
    assert client.get(f"/api/memories/{memory['id']}").get_json() == {"memory": patched}


def test_patch_content_reports_findings_but_never_the_memory_itself(client):
    original = add(client, FACT)["memory"]
    other = add(client, UNRELATED)["memory"]

    # Rewrite `other` into a copy of `original`: a duplicate of it, not of itself.
    response = client.patch(f"/api/memories/{other['id']}", json={"content": FACT})

    body = response.get_json()
    assert list(body) == ["memory", "duplicates", "contradiction_candidates"]
    assert [hit["memory"]["id"] for hit in body["duplicates"]] == [original["id"]]
    assert body["contradiction_candidates"] == []


def test_patch_type_changes_type_and_the_type_filtered_search(client):
    memory = add(client, FACT)["memory"]
    assert result_ids(search(client, q=FACT, type="method")) == []

    response = client.patch(f"/api/memories/{memory['id']}", json={"type": "method"})

    assert response.status_code == 200
    assert response.get_json()["memory"]["type"] == "method"
    assert response.get_json()["memory"]["content"] == FACT
    assert result_ids(search(client, q=FACT, type="method")) == [memory["id"]]
    assert result_ids(search(client, q=FACT, type="knowledge")) == []
    assert list_memories(client, type="method")["total"] == 1


def test_patch_tags_only_does_not_call_the_embedder(client, embedder):
    memory = add(client, FACT, tags=["old"])["memory"]
    calls_before = len(embedder.calls)

    response = client.patch(f"/api/memories/{memory['id']}", json={"tags": ["New ", "new", "B"]})

    assert response.status_code == 200
    body = response.get_json()
    assert body["memory"]["tags"] == ["new", "b"]
    assert body["memory"]["content"] == FACT
    assert body["duplicates"] == [] and body["contradiction_candidates"] == []
    assert len(embedder.calls) == calls_before
    assert body["memory"]["updated_at"] >= memory["updated_at"]
    assert list_memories(client, tag="new")["total"] == 1
    assert list_memories(client, tag="old")["total"] == 0
    assert result_ids(search(client, q=FACT)) == [memory["id"]]  # the vector is intact


def test_patch_with_the_same_content_does_not_re_embed(client, embedder):
    memory = add(client, FACT)["memory"]
    calls_before = len(embedder.calls)
    response = client.patch(f"/api/memories/{memory['id']}",
                            json={"content": f" {FACT} ", "tags": []})
    assert response.status_code == 200
    assert response.get_json()["memory"]["content"] == FACT
    assert len(embedder.calls) == calls_before


def test_patch_several_fields_at_once(client):
    memory = add(client, FACT)["memory"]
    response = client.patch(f"/api/memories/{memory['id']}",
                            json={"content": UNRELATED, "type": "experience", "tags": ["z"]})
    patched = response.get_json()["memory"]
    assert (patched["content"], patched["type"], patched["tags"]) == (
        UNRELATED, "experience", ["z"])
    assert result_ids(search(client, q=UNRELATED, type="experience")) == [memory["id"]]


# -- DELETE /api/memories/<id> ----------------------------------------------------------
def test_delete_removes_the_memory_and_its_vector(client, app):
    doomed = add(client, FACT)["memory"]
    kept = add(client, FACT_VARIANT)["memory"]
    assert db_counts(app) == (2, 2)

    response = client.delete(f"/api/memories/{doomed['id']}")

    assert response.status_code == 200
    assert response.get_json() == {
        "deleted": doomed,
        "undo": {"method": "POST", "url": f"/api/trash/{doomed['id']}/restore"}}
    missing = client.get(f"/api/memories/{doomed['id']}")
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "memory_not_found"
    assert result_ids(search(client, q=FACT, k=100, threshold=-1)) == [kept["id"]]
    assert [m["id"] for m in list_memories(client)["items"]] == [kept["id"]]
    assert db_counts(app) == (1, 1)  # no orphan vector left behind
    assert client.delete(f"/api/memories/{doomed['id']}").status_code == 404  # only once


def test_deleted_memory_is_no_longer_a_duplicate(client):
    memory = add(client, FACT)["memory"]
    client.delete(f"/api/memories/{memory['id']}")
    body = client.post("/api/memories/check", json={"content": FACT}).get_json()
    assert body == {"duplicates": [], "contradiction_candidates": []}


def test_ids_are_not_reused_after_delete(client):
    memory = add(client, FACT)["memory"]
    client.delete(f"/api/memories/{memory['id']}")
    assert add(client, FACT)["memory"]["id"] > memory["id"]


# -- GET /health ------------------------------------------------------------------------
def test_health_reports_ok_with_versions_and_the_embedder(client, embedder):
    add(client, FACT)
    response = client.get("/health")

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["offline"] is True
    database = body["database"]
    assert database["driver"] == db.driver()[1]
    assert database["driver"] in {"sqlite3", "pysqlite3"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", database["sqlite_version"])
    assert re.fullmatch(r"v\d+\.\d+\.\d+.*", database["sqlite_vec_version"])
    assert database["memories"] == 1
    assert database["problems"] == []
    assert body["embedder"]["state"] == "ready"
    assert body["embedder"]["model"] == embedder.model_id == "fake/bag-of-words"
    assert body["embedder"]["error"] is None
    assert body["embedder"]["dimensions"] == 384
