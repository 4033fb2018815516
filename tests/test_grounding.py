"""chat.grounding: what a personal question is about, and the details of an answer that no
memory holds."""

import pytest

from lumara_web.chat.grounding import asked_about, mentions, unsupported_details


@pytest.mark.parametrize("question, thing", [
    ("Which city was my mother born in?", "mother"),
    ("What is my dog's name?", "dog"),
    ("What colour is my new car?", "car"),
    ("Where did I leave it?", None),
])
def test_what_a_question_is_about(question, thing):
    assert asked_about(question) == thing


def test_another_name_for_the_same_person_counts():
    assert mentions("My mum was born in Porto.", "mother")
    assert mentions("Our dogs sleep downstairs.", "dog")
    assert not mentions("My cousin Ines lives in Valencia.", "mother")


def test_names_numbers_and_dates_must_come_from_the_sources():
    sources = ["What is my mortgage payment?", "My mortgage payment is 1,240 euros, taken "
               "on the 15th."]
    assert unsupported_details("Your mortgage payment is 1,240 euros.", sources) == []
    assert unsupported_details("It is 1,390 euros, paid to Santander in May.", sources) == [
        "1,390", "Santander", "May"]
    assert unsupported_details("Your dog is called Max.", ["Our cat is called Pixel."]) == [
        "Max"]
