"""memory.extraction.faithful_content: a memory says what the user said, all of it, and
nothing more; otherwise the user's own words are kept."""

import pytest

from lumara_web.memory.extraction import faithful_content


@pytest.mark.parametrize("said, proposed", [
    ("I think my passport expires in 2027.", "My passport expires in 2027."),  # a hedge left out
    ("My phone contract costs 18 euros a month.", "My phone contract costs 18 euros a month."),
    ("My cats are called Pixel and Dot.", "My cats are called Pixel and Dot."),
])
def test_a_faithful_proposal_is_kept(said, proposed):
    assert faithful_content(said, proposed) == proposed


@pytest.mark.parametrize("said, proposed", [
    ("Ana moved to Porto last month.", "Amina moved to Porto last month."),  # invented name
    ("My locker code is 4471.", "My locker code is 4417."),  # invented number
    ("My dog is called Rex.", "I enjoy skiing in the Alps."),  # another fact altogether
    ("My sister Ana lives in Lisbon and works as an architect.",
     "My sister Ana lives in Lisbon."),  # half of a compound fact dropped
    ("Kuba turns nine on the 5th of May.", "Kuba turns nine in May."),  # a date dropped
])
def test_an_unfaithful_proposal_gives_way_to_the_users_words(said, proposed):
    assert faithful_content(said, proposed) == said


def test_the_users_words_are_tidied():
    assert faithful_content("my  dog is   called Rex", "My cat is Tom.") == \
        "My dog is called Rex."
