"""The FTS5 keyword index (migration m006, keyword_index.py): kept in step with every write,
filled for memories stored before it existed, stemmed, and safe for any query text."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lumara_web.search import keyword_index
from lumara_web.storage import db, migrations, store

from .fakes import FakeEmbedder

EMBED = FakeEmbedder()


def add(conn, content, type="knowledge", tags=()):
    return store.insert_memory(conn, content=content, type=type, tags=list(tags),
                               embedding=EMBED.vector(content))


def found(conn, text, **options):
    return [memory_id for memory_id, _ in keyword_index.search(conn, text, limit=10, **options)]


def test_inserts_edits_and_deletes_are_searchable_at_once(conn):
    lease = add(conn, "Our apartment lease renews every September.")
    add(conn, "The car needs an oil change.")
    assert found(conn, "lease") == [lease.id]
    store.update_memory(conn, lease.id, content="Our flat contract ends in May.",
                        embedding=EMBED.vector("Our flat contract ends in May."))
    assert found(conn, "lease") == []
    assert found(conn, "contract") == [lease.id]
    store.delete_memory(conn, lease.id)
    assert found(conn, "contract") == []


def test_tags_are_searched_and_a_type_change_keeps_the_words(conn):
    memory = add(conn, "Steep the coffee for 16 hours.", tags=["coldbrew"])
    assert found(conn, "coldbrew") == [memory.id]
    store.update_memory(conn, memory.id, type="method")
    assert found(conn, "coffee") == [memory.id]
    assert found(conn, "coffee", type="method") == [memory.id]
    assert found(conn, "coffee", type="knowledge") == []


def test_a_rolled_back_write_leaves_the_index_as_it_was(conn):
    kept = add(conn, "The spare key is with the neighbour.")
    with pytest.raises(RuntimeError):
        with db.transaction(conn):
            add(conn, "The spare bicycle is in the garage.")
            store.update_memory(conn, kept.id, content="Nothing here now.",
                                embedding=EMBED.vector("Nothing here now."))
            raise RuntimeError("abort")
    assert found(conn, "spare") == [kept.id]
    assert found(conn, "bicycle") == []
    # The index and its table agree (FTS5's own check for external-content tables).
    conn.execute("INSERT INTO memory_keywords (memory_keywords, rank)"
                 " VALUES ('integrity-check', 1)")


def test_writes_from_another_connection_are_seen(conn, tmp_path):
    other = db.connect(tmp_path / "lumara.db")
    try:
        memory = add(other, "My dentist is Dr. Silva on Rua Augusta.")
        assert found(conn, "Silva") == [memory.id]
        store.delete_memory(other, memory.id)
        assert found(conn, "Silva") == []
    finally:
        other.close()


def test_the_migration_indexes_memories_stored_before_it(tmp_path):
    conn = db.connect(tmp_path / "old.db")
    try:
        applied = migrations.applied_versions(conn)
        assert applied == set()
        keyword_version = migrations.MIGRATIONS.index(migrations.m006_memory_keywords)
        earlier = migrations.MIGRATIONS[:keyword_version]
        for version, migration in enumerate(earlier, start=1):  # a database from before m006
            with db.transaction(conn):
                migration(conn)
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?, '')",
                             (version, migration.__name__))
        old = add(conn, "I learned to sail on a lake in Switzerland.")
        assert "m006_memory_keywords" in migrations.migrate(conn)
        assert found(conn, "sailing Switzerland") == [old.id]
        assert found(conn, "sail") == [old.id]
    finally:
        conn.close()


@pytest.mark.parametrize("query", ["renews", "renewal", "renewing", "RENEW"])
def test_stemming_matches_other_forms_of_a_word(conn, query):
    memory = add(conn, "Remember to renew the passport.")
    assert found(conn, query) == [memory.id]


def test_accents_and_case_are_folded(conn):
    memory = add(conn, "We met at the Café in Zürich.")
    assert found(conn, "cafe zurich") == [memory.id]


def test_rarer_words_rank_first(conn):
    common = [add(conn, f"My friend {name} likes tea.") for name in ("Ana", "Ben", "Cy")]
    rare = add(conn, "My friend Jonas likes tea and chess.")
    assert found(conn, "who plays chess with tea?")[0] == rare.id
    assert set(found(conn, "tea")) == {memory.id for memory in [*common, rare]}


@pytest.mark.parametrize("text", [
    '"', '""', "'", "*", "a*", "^start", "col:umn", "content:tea", "-tea", "NOT tea",
    "tea NOT", "NEAR(tea coffee)", "NEAR", "AND OR NOT", "(((", ")", "tea)", "{tea}",
    "tea + coffee", "\\", "tea\x00coffee", "what is my", "", "   ", "?!", "_", "__x__",
    "🙂 tea", "c'est l'été", "e-mail", "100%", "x" * 5000,
])
def test_nasty_query_text_never_raises(conn, text):
    add(conn, "Tea with coffee and content.")
    keyword_index.search(conn, text, limit=5)


def test_text_without_searchable_words_finds_nothing(conn):
    add(conn, "What is my name?")
    assert keyword_index.match_expression("What is my?") is None
    assert found(conn, "What is my?") == []


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_any_text_is_a_valid_query(text):
    conn = db.connect(":memory:")
    try:
        migrations.migrate(conn)
        store.insert_memory(conn, content="Tea and coffee", type="knowledge", tags=[],
                            embedding=np.ones(384, np.float32) / np.sqrt(384))
        keyword_index.search(conn, text, limit=5)
    finally:
        conn.close()


def test_long_text_is_cut_to_a_bounded_query():
    expression = keyword_index.match_expression(" ".join(f"word{n}" for n in range(500)))
    assert expression.count(" OR ") == keyword_index.MAX_QUERY_TERMS - 1


def test_words_too_many_memories_share_are_left_out_when_asked(conn):
    soups = [add(conn, f"Recipe {n}: a soup with leeks.") for n in range(5)]
    rare = add(conn, "Grandma's soup uses smoked paprika.")
    assert keyword_index.distinctive_terms(conn, ["soup", "paprika", "absent"], 3) == [
        "paprika", "absent"]
    assert found(conn, "paprika soup", max_matches=3) == [rare.id]
    assert set(found(conn, "soup", max_matches=3)) == set()
    assert set(found(conn, "soup")) == {memory.id for memory in [*soups, rare]}
