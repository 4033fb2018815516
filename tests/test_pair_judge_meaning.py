"""pair_judge cues that need what words mean (WordNet through lumara_web.lexicon):
synonyms, a denied kind, opposite feelings, and the finer readings of denials and the past.
Sentences here are written for these tests (none from an evaluation file)."""

from __future__ import annotations

import pytest

from lumara_web.memory import pair_judge
from lumara_web.memory.pair_judge import classify, cues

# -- synonyms: the same word in other words ------------------------------------------------


@pytest.mark.parametrize("a, b", [
    ("My niece hates cilantro.", "My niece can't stand coriander."),  # a noun synset
    ("We rent a flat near the station.", "We rent an apartment near the station."),
    ("I find chit-chat tiring.", "I find small talk tiring."),  # a compound
    ("My uncle is myopic.", "My uncle is near-sighted."),  # adjectives, a hyphenated one
    ("I'm always early for choir.", "I'm never late for choir."),  # a denied opposite
])
def test_words_of_the_same_meaning_make_a_duplicate_that_cosine_scores_low(a, b):
    assert cues(a, b).contradiction is None
    verdict = classify(a, b, 0.55)
    assert verdict.label == "duplicate", verdict


@pytest.mark.parametrize("a, b", [
    ("The light in the garage flickers.", "I prefer light jackets in spring."),
    ("My bank card expires in 2031.", "We had a picnic on the river bank."),
    ("I'm allergic to cats.", "We saw Cats the musical in London."),
    ("I hate cilantro.", "I also can't stand fennel."),
    ("My flat is on the third floor.", "My bike has a flat tyre."),
])
@pytest.mark.parametrize("similarity", [0.15, 0.3, 0.5])
def test_unrelated_pairs_sharing_a_word_are_neither_duplicates_nor_contradictions(
        a, b, similarity):
    assert classify(a, b, similarity).label in ("related", "unrelated")


def test_a_synonym_swap_is_no_substitution_and_a_clash_needs_the_same_words():
    assert not cues("My niece hates cilantro.", "My niece hates coriander.").substitution
    # Through a synonym only, a clash is not sure enough for a contradiction cue.
    assert cues("We got married on 3 August.", "Our wedding is on 12 June.").contradiction \
        is None


# -- denials ------------------------------------------------------------------------------
def test_a_denial_must_deny_something_the_other_sentence_says():
    a, b = ("My uncle is colour-blind and can't tell red from green.",
            "My uncle has red-green color blindness.")
    assert cues(a, b).contradiction is None
    assert classify(a, b, 0.68).label != "contradiction"


@pytest.mark.parametrize("a, b", [
    ("I'm always late for choir.", "I'm never late for choir."),
    ("I gave up sugar in 2019.", "I still take sugar in my tea."),
    ("I drink my tea without milk.", "I take milk in my tea."),
    ("I can't stand olives.", "I love olives."),
])
def test_denials_said_in_other_ways_contradict(a, b):
    assert cues(a, b).contradiction is not None
    assert cues(b, a).contradiction is not None


@pytest.mark.parametrize("a, b", [
    ("I can't stand olives.", "I hate olives."),  # "can't stand" is a dislike
    ("I can't sleep without earplugs.", "I always sleep with earplugs."),  # two denials
    ("I no longer eat meat.", "I stopped eating meat."),
])
def test_denials_said_in_other_ways_agree(a, b):
    assert cues(a, b).contradiction is None


def test_a_value_of_the_past_holds_beside_one_of_now_but_a_date_stays():
    assert cues("I lived in Leeds for years.", "I live in York.").contradiction is None
    assert cues("I used to work in Leeds.", "I work in York.").contradiction is None
    assert cues("My cousin lives in Leeds.", "My cousin lives in York.").contradiction == \
        "One says Leeds, the other York, about your cousin."
    assert cues("We got married in June.", "We got married in August.").contradiction == \
        "One says June, the other August."


# -- a denied kind ------------------------------------------------------------------------
@pytest.mark.parametrize("a, b, how", [
    ("I've stopped taking any medication.", "I take aspirin every evening.", "which is one"),
    ("I have never been to South America.", "We spent a week in Peru.", "which is one"),
    ("I don't drink alcohol.", "I have a beer after work on Fridays.", "which is one"),
    # A word WordNet does not know, where the denied verb takes it: it may be one.
    ("I stopped taking any medication.", "I take zorbexitol every morning.",
     "which may be one"),
])
@pytest.mark.parametrize("similarity", [0.25, 0.6, 0.9])
def test_a_denied_kind_against_one_of_its_kinds_is_a_contradiction_for_review(
        a, b, how, similarity):
    for first, second in ((a, b), (b, a)):
        verdict = classify(first, second, similarity)
        assert verdict.label == "contradiction"
        assert verdict.confidence == pair_judge.KNOWLEDGE_CONFIDENCE
        assert how in verdict.explanation


@pytest.mark.parametrize("a, b", [
    ("I stopped taking any medication.", "My mother takes aspirin every evening."),
    ("I never eat fish.", "I keep goldfish in a pond."),  # another verb
    ("I don't drink alcohol.", "I don't drink beer."),  # two denials
    ("I have never been to Asia.", "I would love to visit Peru."),  # not a part of it
    ("I don't own any pets.", "I own a Brompton."),  # "any", but not the verb's object
])
def test_no_denied_kind_where_the_other_sentence_names_none_of_its_own(a, b):
    assert cues(a, b).knowledge is None


# -- feelings -----------------------------------------------------------------------------
@pytest.mark.parametrize("a, b", [
    ("Crowded trains make me anxious.", "I feel calm on crowded trains."),
    ("Open-plan offices give me migraines.", "I work best in open-plan offices."),
    ("I hate busy cafés.", "I relax best in busy cafés."),
    ("My son is allergic to kiwis.", "My son eats kiwis every day with no problems."),
    ("I don't mind noisy neighbours.", "Noisy neighbours stress me out."),
])
def test_opposite_feelings_about_one_thing_are_a_contradiction_for_review(a, b):
    assert cues(a, b).knowledge is not None
    assert cues(b, a).knowledge is not None
    assert classify(a, b, 0.9).label == "contradiction"  # never a duplicate


@pytest.mark.parametrize("a, b", [
    ("Cats make me sneeze.", "I love cats."),  # a liking is no feeling of this kind
    ("Loud music gives me a headache.", "I get headaches from loud music."),
    ("Yoga eases my back pain.", "I enjoy yoga."),  # a pain lessened is good
    ("My best friend hates cafés.", "My best friend works in Leeds."),  # "best" names
    ("Crowded trains make me anxious.", "I feel calm in quiet libraries."),
])
def test_no_opposite_feelings_where_they_agree_or_concern_other_things(a, b):
    assert cues(a, b).knowledge is None


# -- near kinds, seasons, prepositions: rewordings MiniLM scores low --------------------------
@pytest.mark.parametrize("a, b", [
    # a kind for its near kind ("sedan" is a kind of car), a preposition for a stop word
    ("My aunt parks her sedan behind the barn.", "My aunt parks her car behind the barn."),
    ("Our bikes are kept beneath the porch.", "Our bikes are kept under the porch."),
])
def test_a_near_kind_or_another_preposition_makes_a_rewording(a, b):
    assert cues(a, b).contradiction is None
    assert classify(a, b, 0.6).label == "duplicate"


def test_a_season_reads_as_the_month_it_holds_and_not_as_another():
    holds = cues("My niece moved to Lisbon this October.", "This autumn my niece moved to Lisbon.")
    assert holds.same_values and not holds.values_differ
    other = cues("My niece moved to Lisbon this October.", "This spring my niece moved to Lisbon.")
    assert not other.same_values and other.values_differ


def test_a_kind_against_a_denied_kind_is_no_rewording():
    a, b = "I don't eat any poultry.", "I eat chicken."  # chicken is one link below poultry
    assert classify(a, b, 0.6).label != "duplicate"


def test_a_clash_found_through_synonyms_is_a_contradiction_for_review():
    a, b = "Our wedding was on 9 May.", "We married on 21 October."
    found = cues(a, b)
    assert found.contradiction is None
    assert found.reworded_contradiction == "One says 9 May, the other 21 October."
    verdict = classify(a, b, 0.55)
    assert verdict.label == "contradiction"
    assert verdict.confidence == pair_judge.KNOWLEDGE_CONFIDENCE


# -- a denied kind against a word WordNet does not know -------------------------------------
def test_a_denied_kind_against_an_unknown_word_that_is_taken_is_for_review():
    a, b = "I use zolmitriptan nasal spray.", "I'm not on any medication."
    assert "may be one" in cues(a, b).knowledge
    assert classify(a, b, 0.4).label == "contradiction"
    # A known word of another kind is none: a tomato is no medication.
    assert cues("I take tomatoes to work.", "I'm not on any medication.").knowledge is None


# -- one-value slots: a full-time job, the only one of a thing -------------------------------
@pytest.mark.parametrize("a, b", [
    ("I work full-time as an electrician.", "I'm a full-time librarian."),
    ("My aunt works as a plumber.", "My aunt is a librarian."),  # both jobs by WordNet
])
def test_two_different_jobs_of_one_person_are_a_contradiction_for_review(a, b):
    assert "jobs" in cues(a, b).knowledge
    assert classify(a, b, 0.45).label == "contradiction"


@pytest.mark.parametrize("a, b", [
    ("I work full-time as an electrician.", "My brother is a full-time librarian."),
    ("I work full-time as an electrician.", "I'm also a part-time librarian."),
    ("I worked as an electrician for years.", "I'm a full-time librarian."),
    ("I work full-time as a doctor.", "I'm a full-time surgeon."),  # a kind of doctor
    ("I work as an electrician.", "I'm a grandmother."),  # no job
])
def test_no_clash_of_jobs_for_two_people_two_jobs_a_past_one_or_a_kind(a, b):
    assert cues(a, b).knowledge is None


def test_the_only_one_of_a_thing_named_as_two_kinds_is_a_contradiction_for_review():
    a, b = "Our only boat is a canoe.", "We sail a dinghy on the lake."
    assert "Only one boat" in cues(a, b).knowledge
    assert classify(a, b, 0.4).label == "contradiction"
    assert cues(a, "My sister sails a dinghy.").knowledge is None  # someone else's
    assert cues(a, "We paddle our canoe on Sundays.").knowledge is None  # the same kind
    # A kayak is a kind of canoe (WordNet): naming it is no second kind.
    assert cues(a, "We paddle a kayak on the lake.").knowledge is None


# -- a word whose definition denies kinds of thing ------------------------------------------
def test_a_word_defined_by_what_it_takes_none_of_against_one_of_them_is_for_review():
    a, b = "My flatmate is a teetotaler.", "My flatmate orders beer at every gig."
    assert "alcoholic beverages" in cues(a, b).knowledge
    assert classify(a, b, 0.3).label == "contradiction"
    # Someone else eats the bacon; the vegetarian is the nephew.
    assert cues("My nephew is vegetarian.", "I fry bacon most mornings.").knowledge is None
    assert cues("I'm vegetarian.", "I grow lettuce.").knowledge is None
