"""lumara_web.memory.pair_judge: word cues and the default classifier; how insights, the chat and
import use it. Sentences here are written for these tests (none from an evaluation file)."""

from __future__ import annotations

import numpy as np
import pytest

from lumara_web.memory import pair_judge
from lumara_web.memory.pair_judge import LABELS, PairVerdict, classify, cues
from lumara_web.memory.validation import NewMemory
from lumara_web.storage import db, review_store, store

from .fakes import FakeEmbedder
from .helpers import import_document

RENT = "The monthly rent for our flat in the old town is 900 euros."
RENT_CHANGED = "The monthly rent for our flat in the old town is 950 euros."
PLUMBER = "The plumber Marek comes on Friday 12 May at 9 am to fix the boiler."
PLUMBER_REWORDED = "On Friday 12 May at 9 am Marek, our plumber, repairs the boiler."
# Close in wording, three words apart, no cue: only the model could judge them.
WEEKEND = "Tennis is what I do with them at the club on the weekend."
HOLIDAY = "Chess is what I do with them at the school on the holiday."


# -- cues ----------------------------------------------------------------------------------
@pytest.mark.parametrize("a, b, reason", [
    ("The museum pass expires in 2027.", "The museum pass expires in 2029.",
     "One says 2027, the other 2029."),
    ("I own three bicycles.", "I own five bicycles.", "One says three, the other five."),
    ("The flat is on the third floor.", "The flat is on the 4th floor.", "third, the other 4th"),
    ("Choir practice is on Wednesdays.", "Choir practice is on Saturdays.",
     "Wednesdays, the other Saturdays"),
    ("My niece was born in April.", "My niece was born in November.",
     "One says April, the other November, about your niece."),
    ("Our front door is painted yellow.", "Our front door is painted blue.",
     "yellow, the other blue, about your front door"),
    ("The garden faces east.", "The garden faces west.", "east, the other west"),
    ("My accountant is Dr. Varga.", "My accountant is Dr. Novak.",
     "Varga, the other Novak, about your accountant"),
    ("The cabin is in Bergen.", "The cabin is in Tromsø.", "Bergen, the other Tromsø"),
    ("My rhesus factor is B positive.", "My rhesus factor is AB positive.",
     "One says B, the other AB, about your rhesus factor."),
    ("I am afraid of dogs.", "I am not afraid of dogs.", "One denies what the other says (“not”)."),
    ("I have a gluten allergy.", "I have no gluten allergy.", "denies what the other says (“no”)"),
    ("I eat meat.", "I never eat meat.", "denies what the other says (“never”)"),
    ("I like jazz concerts.", "I hate jazz concerts.", "One says “like”, the other “hate”."),
    ("I enjoy long hikes.", "I don't enjoy long hikes.", "“enjoy”, the other “don't enjoy”"),
    ("The village pharmacy is cheap.", "The village pharmacy is expensive.",
     "cheap, the other expensive"),
    ("My laptop is fast.", "My laptop is slow.", "fast, the other slow, about your laptop"),
    ("I remember my dreams.", "I forget my dreams.", "One says remember, the other forget."),
    ("My licence plate is XK12 ABC.", "My licence plate is AB34 CDE.",
     "One says XK12 ABC, the other AB34 CDE, about your licence plate."),
])
def test_a_contradiction_cue_fires_and_says_why(a, b, reason):
    """The reason names the two values as written, and what they are of where both say."""
    found = cues(a, b).contradiction
    assert found is not None and reason in found
    assert cues(b, a).contradiction is not None  # whichever memory came first


@pytest.mark.parametrize("a, b", [
    # A different subject, not a different value for the same one.
    ("My niece was born in 2011.", "My nephew was born in 2014."),
    ("My accountant is Dr. Varga.", "My physiotherapist is Dr. Novak."),
    ("The bins go out on Tuesdays.", "The garden waste goes out on Fridays."),
    # The same meaning with the polarity carried differently.
    ("I don't like jazz concerts.", "I hate jazz concerts."),
    ("I never drink fizzy drinks.", "I always avoid fizzy drinks."),
    # Rewordings that keep their values.
    ("The flat is on the fourth floor.", "We live on the 4th floor."),
    ("I swim twice a week.", "Two times a week I go swimming."),
    ("My sister Ilse lives in Bergen.", "Ilse, my sister, lives in Bergen."),
    # More detail, not another value.
    ("I drink tea.", "I drink tea without sugar."),
    ("The cabin is in Bergen.", "The cabin is in Bergen, Norway."),
])
def test_no_cue_fires_on_pairs_that_do_not_contradict(a, b):
    assert cues(a, b).contradiction is None
    assert cues(b, a).contradiction is None


def test_a_swapped_complement_is_a_substitution_but_a_renamed_subject_is_not():
    assert cues("I prefer the front carriage.", "I prefer the rear carriage.").substitution
    assert not cues("My job is teaching maths.", "I work teaching maths.").substitution


# -- the classifier ------------------------------------------------------------------------
CONTRADICTIONS = [("The museum pass expires in 2027.", "The museum pass expires in 2029."),
                  ("I am afraid of dogs.", "I am not afraid of dogs."),
                  ("My laptop is fast.", "My laptop is slow."), (RENT, RENT_CHANGED)]


@pytest.mark.parametrize("a, b", CONTRADICTIONS)
@pytest.mark.parametrize("similarity", [0.5, 0.72, 0.85, 0.93, 1.0])
def test_a_pair_with_a_contradiction_cue_is_never_a_duplicate(a, b, similarity):
    verdict = classify(a, b, similarity)
    assert verdict.label == "contradiction" and verdict.source == "cues"
    assert verdict.explanation == cues(a, b).contradiction


def test_cosine_bands_decide_when_no_cue_fires():
    a, b = "I collect old maps.", "I restore antique clocks."
    assert [classify(a, b, s).label for s in (0.95, 0.75, 0.5, 0.1)] == [
        "duplicate", "related", "related", "unrelated"]


def test_a_reworded_duplicate_below_the_duplicate_threshold_is_a_duplicate():
    verdict = classify(PLUMBER, PLUMBER_REWORDED, 0.75)
    assert verdict.label == "duplicate" and verdict.source == "cues+cosine"
    # Below it, only words that all match (fixes / repairs: synonyms) still make one…
    assert classify(PLUMBER, PLUMBER_REWORDED, 0.65).label == "duplicate"
    # …down to the contradiction-cue level: below, cosine is too low to call it one.
    assert classify(PLUMBER, PLUMBER_REWORDED, 0.40).label == "related"


def test_a_substitution_is_never_merged_even_at_a_high_cosine():
    # Close: more likely a changed value than a second one — flagged for review.
    verdict = classify("I prefer the front carriage.", "I prefer the rear carriage.", 0.93)
    assert verdict.label == "contradiction"
    assert verdict.confidence < classify(RENT, RENT_CHANGED, 0.91).confidence


def test_a_looser_substitution_is_related():
    verdict = classify("I am allergic to wasps.", "I am allergic to oat milk.", 0.55)
    assert verdict.label == "related"


def test_verdicts_serialize_with_one_of_the_four_labels():
    verdict = classify(RENT, RENT_CHANGED, 0.91)
    assert verdict.to_dict() == {"label": "contradiction", "confidence": 0.8,
                                 "explanation": "One says 900, the other 950.",
                                 "source": "cues"}
    assert {classify("a b c", "d e f", s).label for s in (0.0, 0.3, 0.9)} <= set(LABELS)


class ScriptedEngine:
    """Answers the judge's one request with a fixed text."""

    def __init__(self, text: str):
        self.text, self.requests = text, []

    def submit(self, request, stop=None):
        self.requests.append(request)
        return type("Job", (), {"text": lambda job: self.text})()


def test_the_model_verdict_is_schema_constrained_and_an_unusable_answer_is_no_verdict():
    engine = ScriptedEngine('{"contradicts": true, "confidence": 0.7, "explanation": "No."}')
    judged = pair_judge.ContradictionJudge(engine).judge("A x.", "B y.")
    assert (judged.label, judged.confidence, judged.source) == ("contradiction", 0.7, "model")
    [request] = engine.requests
    assert request.json_schema["properties"]["contradicts"] == {"type": "boolean"}
    assert request.messages[-1]["content"] == "A: A x.\nB: B y."
    assert request.pinned == len(request.messages) - 1  # all but the pair: the fixed prefix
    unusable = pair_judge.ContradictionJudge(ScriptedEngine("no json")).judge("A x.", "B y.")
    assert unusable.label == "related" and unusable.confidence == 0.0


def test_the_model_can_add_a_contradiction_but_never_remove_a_cued_one():
    says = [PairVerdict("duplicate", 0.5, "", "model")]
    kept = pair_judge.classify_with_model(RENT, RENT_CHANGED, 0.9, lambda a, b: says[0])
    assert kept.label == "contradiction" and kept.source == "cues"
    says[0] = PairVerdict("contradiction", 0.5, "", "model")
    a, b = "I collect old maps.", "I restore antique clocks."
    # Related by cosine, close enough to be a chat's contradiction candidate.
    assert pair_judge.classify_with_model(a, b, 0.75, lambda x, y: says[0]).source == "model"
    # Far pairs are not worth a model call, and a duplicate is no candidate (the chat
    # suggests it for review instead).
    asked = []
    for similarity in (0.3, 0.9):
        pair_judge.classify_with_model(a, b, similarity,
                                       lambda x, y: asked.append(1) or says[0])
    assert asked == []


# -- insights, through the API -------------------------------------------------------------
@pytest.fixture
def services(app):
    return app.extensions["lumara"]


def cosine(a: str, b: str) -> float:
    embedder = FakeEmbedder()
    return float(np.dot(embedder.vector(a), embedder.vector(b)))


def test_a_contradiction_in_the_duplicate_band_is_a_contradiction_candidate(client, app):
    assert cosine(RENT, RENT_CHANGED) >= app.extensions["lumara"].settings[
        "duplicate_threshold"]
    first = client.post("/api/memories", json={"content": RENT}).get_json()["memory"]

    body = client.post("/api/memories", json={"content": RENT_CHANGED}).get_json()

    assert body["duplicates"] == []
    [candidate] = body["contradiction_candidates"]
    assert candidate["memory"]["id"] == first["id"]
    assert candidate["verdict"] == {"label": "contradiction", "confidence": 0.8,
                                    "explanation": "One says 900, the other 950.",
                                    "source": "cues"}


def test_a_reworded_duplicate_below_the_threshold_is_reported_as_a_duplicate(client, app):
    settings = app.extensions["lumara"].settings
    assert settings["reworded_duplicate_threshold"] <= cosine(PLUMBER, PLUMBER_REWORDED) \
        < settings["duplicate_threshold"]
    first = client.post("/api/memories", json={"content": PLUMBER}).get_json()["memory"]

    body = client.post("/api/memories/check", json={"content": PLUMBER_REWORDED}).get_json()

    [duplicate] = body["duplicates"]
    assert duplicate["memory"]["id"] == first["id"]
    assert duplicate["verdict"]["label"] == "duplicate"
    assert body["contradiction_candidates"] == []


# -- the chat --------------------------------------------------------------------------------
def test_the_chat_suggests_a_reworded_duplicate_instead_of_dropping_it(services, engine):
    """Below the duplicate threshold a 'duplicate' rests on the words: likely the same fact,
    but the user decides (dropping a new fact would lose it for good)."""
    chat = services.chat
    conn = db.connect(services.settings["db_path"])
    try:
        existing, _ = services.memories.add(conn, NewMemory(content=PLUMBER, type="knowledge",
                                                            tags=[], metadata={}))
        engine.enqueue({"content": PLUMBER_REWORDED, "tags": ["home"]}, "extract")
        events = list(chat.turn(conn, chat.parse_request({"content": PLUMBER_REWORDED})))
        assert events[-1]["type"] == "memory_suggested"
        assert f"may repeat memory {existing.id}" in events[-1]["reasons"]
        assert store.count_memories(conn) == 1
    finally:
        conn.close()


def test_the_chat_saves_a_contradicting_statement_and_records_it_for_review(services, engine):
    chat = services.chat
    conn = db.connect(services.settings["db_path"])
    try:
        existing, _ = services.memories.add(conn, NewMemory(content=RENT, type="knowledge",
                                                            tags=[], metadata={}))
        engine.enqueue({"content": RENT_CHANGED, "tags": ["home"]}, "extract")
        events = list(chat.turn(conn, chat.parse_request({"content": RENT_CHANGED})))

        kinds = [event["type"] for event in events]
        assert "memory_exists" not in kinds
        assert kinds[-2:] == ["memory_saved", "contradiction"]
        found = events[-1]
        assert found["existing_memory"]["id"] == existing.id
        assert found["verdict"]["source"] == "cues"
        assert "900" in found["verdict"]["explanation"]
        [pending] = review_store.list_contradictions(conn)
        assert pending.existing_memory_id == existing.id
        assert store.count_memories(conn) == 2
        assert [r for r in engine.requests if r.purpose == "judge"] == []  # no model call
    finally:
        conn.close()


def test_by_default_the_chat_asks_the_model_nothing_about_an_uncued_candidate(services,
                                                                            engine):
    assert services.settings["contradiction_model_judge"] is False
    chat = services.chat
    conn = db.connect(services.settings["db_path"])
    try:
        services.memories.add(conn, NewMemory(content=WEEKEND, type="knowledge", tags=[],
                                              metadata={}))
        statement = HOLIDAY
        engine.enqueue({"content": statement, "tags": ["sport"]}, "extract")
        events = list(chat.turn(conn, chat.parse_request({"content": statement})))
        assert events[-1]["type"] == "memory_saved"
        assert [r for r in engine.requests if r.purpose == "judge"] == []
        assert review_store.list_contradictions(conn) == []
    finally:
        conn.close()


# -- import ----------------------------------------------------------------------------------
def _document(*contents):
    return {"format": "lumara-export", "version": 1, "embedding_model": "fake/bag-of-words",
            "dimensions": 384, "memories": [{"content": content} for content in contents]}


def test_import_does_not_skip_a_contradicting_memory(client):
    client.post("/api/memories", json={"content": RENT})

    body = import_document(client, _document(RENT_CHANGED, RENT, RENT_CHANGED))

    assert body["imported"] == 1  # the new value, once; the old one is a true duplicate
    assert [(skipped["index"], skipped["content"]) for skipped in body["skipped_duplicates"]] \
        == [(1, RENT), (2, RENT_CHANGED)]


def test_import_does_not_skip_a_memory_contradicting_one_earlier_in_the_file(make_app):
    client = make_app().test_client()
    body = import_document(client, _document(RENT, RENT_CHANGED))
    assert body["imported"] == 2 and body["skipped_duplicates"] == []


# -- the real embedder ---------------------------------------------------------------------
REAL_PAIRS = [
    ("I cycle to work every day.", "Every day I ride my bike to work.", "duplicate"),
    ("My dentist is Dr. Varga.", "Dr. Varga is my dentist.", "duplicate"),
    ("The museum pass expires in 2027.", "The museum pass expires in 2029.", "contradiction"),
    ("I am afraid of dogs.", "I am not afraid of dogs.", "contradiction"),
    ("Our front door is painted yellow.", "Our front door is painted blue.", "contradiction"),
    ("My laptop is fast.", "My laptop is slow.", "contradiction"),
    ("My niece studies chemistry in Ghent.", "My niece plays hockey at weekends.", "related"),
    ("The museum pass expires in 2027.", "I repaired the kitchen tap.", "unrelated"),
]


def test_the_default_classifier_separates_pairs_with_the_real_embedder(real_embedder):
    vectors_a = real_embedder.embed([a for a, _, _ in REAL_PAIRS])
    vectors_b = real_embedder.embed([b for _, b, _ in REAL_PAIRS])
    similarities = np.sum(vectors_a * vectors_b, axis=1)
    labels = [classify(a, b, float(s)).label
              for (a, b, _), s in zip(REAL_PAIRS, similarities)]
    assert labels == [label for _, _, label in REAL_PAIRS]
    # Cosine alone calls at least one of these contradictions a duplicate.
    contradictions = [s for (_, _, label), s in zip(REAL_PAIRS, similarities)
                      if label == "contradiction"]
    assert max(contradictions) >= 0.85


# -- updates: one clause of a memory changed ------------------------------------------------
@pytest.mark.parametrize("memory, update", [
    ("My cousin Marek lives in Krakow and teaches history.",
     "My cousin Marek lives in Gdansk now."),  # the first clause of a compound memory
    ("My friend Lea lives in Lyon.", "Lea moved to Nantes last month."),  # moved to = lives in
    ("My manager is called Omar Haddad.", "Actually my manager is Priya Nair."),
    ("Our rabbit is called Clover.", "Our rabbit is called Pepper."),
])
def test_an_update_to_one_clause_is_a_contradiction_whatever_the_cosine(memory, update):
    assert pair_judge.clause_contradiction(memory, update)
    verdict = pair_judge.classify(memory, update, similarity=0.0)
    assert verdict.label == "contradiction" and verdict.source == "cues"


@pytest.mark.parametrize("memory, addition", [
    ("My cousin Marek lives in Krakow and teaches history.",
     "My cousin Marek also plays the drums."),
    ("My manager is called Omar Haddad.", "My manager Omar Haddad is from Tunis."),
    ("My brother lives in Gdansk.", "My brother also has a flat in Warsaw."),
])
def test_an_addition_is_never_a_contradiction(memory, addition):
    assert pair_judge.clause_contradiction(memory, addition) is None


def test_a_word_for_a_kind_of_the_same_thing_is_the_same_subject():
    assert pair_judge.clause_contradiction("My father Henrik lives in Aarhus.",
                                           "My dad moved to Odense last month.")
    assert pair_judge.clause_contradiction("My father Henrik is a retired postman who lives "
                                           "in Aarhus.", "My dad moved to Odense last month.")
    assert pair_judge.clause_contradiction("My father Henrik lives in Aarhus.",
                                           "My uncle moved to Odense last month.") is None


def test_clauses_carry_the_subject_to_the_clauses_without_one():
    assert pair_judge.clauses("My cousin Marek lives in Krakow and teaches history.") == [
        "My cousin Marek lives in Krakow", "My cousin Marek teaches history"]


@pytest.mark.parametrize("memory, update, old_name, new_name", [
    ("We got a black labrador called Juno in March.", "Our dog is called Nala.", "Juno", "Nala"),
    ("Our cat is called Pixel.", "My cat's name is Biscuit.", "Pixel", "Biscuit"),
    ("My boat is named Aurora.", "Our boat is called Selkie now.", "Aurora", "Selkie"),
    ("Our border terrier Pickle was born in 2019.", "Our dog is called Biscuit now.",
     "Pickle", "Biscuit"),
])
def test_a_new_name_for_the_same_thing_is_an_update(memory, update, old_name, new_name):
    assert pair_judge.clause_contradiction(memory, update).startswith(
        f"One says {old_name}, the other {new_name}")


@pytest.mark.parametrize("memory, other", [
    ("We got a black labrador called Juno in March.", "Our cat is called Nala."),
    ("Our cat is called Pixel.", "My sister's cat is called Mimi."),
    ("We got a black labrador called Juno in March.", "Our new puppy is called Bo."),
    ("Our cat is called Pixel.", "Our cat is called Pixel."),
])
def test_other_things_and_second_ones_are_no_renaming(memory, other):
    assert pair_judge.renaming(memory, other) is None
