"""memory.memory_types: a memory's type from the grammar of its sentence."""

import pytest

from lumara_web.config import MEMORY_TYPES
from lumara_web.memory.memory_types import memory_type


@pytest.mark.parametrize("text, kind", [
    ("My shoe size is 43.", "knowledge"),
    ("My aunt Rosa lives in Bilbao and works as a nurse.", "knowledge"),
    ("I am allergic to penicillin; it gave me a rash in 2019.", "knowledge"),  # first clause
    ("My colleague Anders lends me his parking card on Fridays.", "knowledge"),
    ("My favourite coffee is an Ethiopian Yirgacheffe, brewed in a V60.", "knowledge"),
    ("Last autumn we went hiking in the Dolomites.", "experience"),
    ("This morning I finally replaced the broken bike chain.", "experience"),
    ("Two years ago I sprained my right ankle playing football.", "experience"),
    ("We got a black labrador called Juno in March.", "experience"),
    ("Meditating before work reduces my afternoon anxiety.", "experience"),
    ("I sleep badly if I drink coffee after 3 pm.", "experience"),
    ("When I make pesto I always toast the pine nuts first.", "method"),
    ("To clean the grinder I grind a spoon of dry rice.", "method"),
    ("I take magnesium every evening before bed.", "method"),
    ("I feed the sourdough starter twice a day.", "method"),  # "feed" is no past tense
    ("Before a presentation I rehearse it out loud twice.", "method"),
])
def test_the_sentence_decides_the_type(text, kind):
    assert memory_type(text) == kind
    assert kind in MEMORY_TYPES
