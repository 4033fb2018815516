"""Knowing when nothing matches (search/relevance.py) and who "my brother" is
(search/aliases.py): the names memories give people, the question written with them, and
the score that admits a memory only when it stands out and speaks of what was asked."""

from __future__ import annotations

import numpy as np
import pytest

from lumara_web.search import aliases, relevance, retrieval
from lumara_web.storage import store

from .test_hybrid_retrieval import QUERY, at_cosine


def remember(conn, *contents: str) -> list[int]:
    return [store.insert_memory(conn, content=content, type="knowledge", tags=[],
                                embedding=at_cosine(0.2, seed)).id
            for seed, content in enumerate(contents)]


# -- aliases ------------------------------------------------------------------------------
def test_names_come_from_the_memories_that_introduce_someone(conn):
    remember(conn, "My brother Tomasz works as an anaesthetist in Leeds.",
             "Renata, my colleague, sits next to the window.",
             "Our cat is called Biscuit and hates the vet.",
             "My brother visits every March.",  # no name: nothing to learn
             "My first Spanish class was fun.")  # "first" names no kind of person
    assert aliases.names_for(conn, "brother") == {"Tomasz"}
    assert aliases.names_for(conn, "colleague") == {"Renata"}
    assert aliases.names_for(conn, "cat") == {"Biscuit"}
    assert aliases.names_for(conn, "sister") == set()


def test_words_for_the_same_person_share_their_names(conn):
    remember(conn, "My wife Ines teaches history at the grammar school.")
    assert aliases.names_for(conn, "spouse") == {"Ines"}


def test_the_question_is_written_with_the_names(conn):
    remember(conn, "My brother Tomasz works as an anaesthetist in Leeds.",
             "Renata, my colleague, sits next to the window.",
             "My colleague Piotr brings cake.", "My colleague Ada rides a bike.")
    people = aliases.people_in(conn, "Where did my brother's colleagues go?")
    assert people == {"brother": frozenset({"Tomasz"}),
                      "colleague": frozenset({"Renata", "Piotr", "Ada"})}
    # Three colleagues: the question does not say which, so "colleagues" stays as it is.
    assert aliases.expanded("Where did my brother's colleagues go?", people) == \
        "Where did my brother Tomasz's colleagues go?"
    assert aliases.expanded("What is the weather?", aliases.people_in(
        conn, "What is the weather?")) == "What is the weather?"


def test_only_words_usually_meaning_people_are_person_words(conn):
    # "night" and "card" name people only in rare senses; "does" is no plural of "doe".
    people = aliases.people_in(conn, "What does my mum do at night with the card?")
    assert set(people) == {"mum"}
    assert aliases.is_relation("brother") and aliases.is_relation("spouse")
    assert not aliases.is_relation("city") and not aliases.is_relation("job")


def test_a_name_the_question_already_gives_is_not_repeated(conn):
    remember(conn, "My brother Tomasz works as an anaesthetist in Leeds.")
    text = "Does my brother Tomasz like cake?"
    assert aliases.expanded(text, aliases.people_in(conn, text)) == text


# -- the score ----------------------------------------------------------------------------
def test_the_same_cosine_counts_more_where_nothing_else_is_near():
    question = relevance.Question.of("Where does my sister live?", {})
    memory = "My sister Ana lives in Lisbon with her two cats."
    alone = relevance.score(question, memory, 0.52, relevance.background([0.52, 0.1]))
    crowd = [0.61] + [0.52] * 30  # hundreds of look-alikes ("my niece lives in …")
    crowded = relevance.score(question, memory, 0.52, relevance.background(crowd))
    assert alone >= relevance.ADMIT > crowded


def test_a_word_in_common_or_a_kind_of_it_is_evidence():
    question = relevance.Question.of("Which antibiotic should doctors avoid giving me?", {})
    background = relevance.background([])
    kind = relevance.score(question, "I am allergic to penicillin.", 0.4, background)
    nothing = relevance.score(question, "I am allergic to cats.", 0.4, background)
    assert kind == pytest.approx(nothing + relevance.WORD_BONUS)


def test_a_memory_about_someone_else_loses():
    background = relevance.background([])
    jonas = relevance.Question.of("What food should I cook for Jonas?", {})
    assert relevance.score(jonas, "Tomás prefers black beans.", 0.5, background) < \
        relevance.score(jonas, "My friend Jonas is vegetarian.", 0.5, background)
    wife = relevance.Question.of("When's my wife's birthday?",
                                 {"wife": frozenset({"Ines"})})
    ines = relevance.score(wife, "Ines's birthday is on May 3.", 0.5, background)
    carmen = relevance.score(wife, "Carmen's birthday is on May 3.", 0.5, background)
    assert ines - carmen == pytest.approx(relevance.NAME_BONUS
                                          + relevance.MISSING_NAME_PENALTY)
    grandma = relevance.Question.of("What goes into grandma's soup?",
                                    {"grandma": frozenset()})
    assert relevance.score(grandma, "My aunt is allergic to soup.", 0.5, background) < \
        relevance.score(grandma, "My grandmother's soup uses paprika.", 0.5, background)


def test_a_question_about_the_user_is_not_answered_about_someone_else():
    background = relevance.background([])
    mine = relevance.Question.of("Where do I live at the moment?", {})
    own = relevance.score(mine, "We now live in a flat in Didsbury.", 0.4, background)
    for other in ("My accountant lives in Ghent now.", "Carmen lives in Ghent now.",
                  "Tomás's flat is in Ghent."):
        assert own - relevance.score(mine, other, 0.4, background) == pytest.approx(
            relevance.MISSING_NAME_PENALTY + relevance.WORD_BONUS * ("live" not in other))
    # With the user beside them, or a question asking who: no one else is meant.
    assert relevance.score(mine, "Tomasz and I live in Ghent.", 0.4, background) == \
        pytest.approx(own)
    who = relevance.Question.of("Who waters our plants when we travel?", {})
    assert relevance.score(who, "Our neighbour Gwen waters our plants.", 0.4, background) \
        > relevance.score(mine, "Our neighbour Gwen waters our plants.", 0.4, background)


def test_the_chat_retrieval_admits_only_what_stands_out(conn):
    """Thirty look-alikes at 0.5 and one at 0.52: nothing stands out, nothing is recalled
    (the cosine threshold alone recalls five); the same memory alone is."""
    crowd = [store.insert_memory(conn, content=f"Note {seed} about errands.",
                                 type="knowledge", tags=[], embedding=at_cosine(0.5, seed)).id
             for seed in range(30)]
    target = store.insert_memory(conn, content="The plan for the week.", type="knowledge",
                                 tags=[], embedding=at_cosine(0.52, 99))
    asked = "What is it?"
    assert retrieval.hybrid_search(conn, asked, QUERY, k=5, threshold=0.35,
                                   admit=relevance.ADMIT) == []
    plain = retrieval.hybrid_search(conn, asked, QUERY, k=5, threshold=0.35)
    assert len(plain) == 5 and plain[0].memory.id == target.id
    for memory_id in crowd:
        store.delete_memory(conn, memory_id)
    hits = retrieval.hybrid_search(conn, asked, QUERY, k=5, threshold=0.35,
                                   admit=relevance.ADMIT)
    assert [hit.memory.id for hit in hits] == [target.id]
    assert np.isclose(hits[0].similarity, 0.52, atol=1e-4)
