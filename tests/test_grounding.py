"""chat.grounding: what a personal question is about, and the details of an answer that no
memory holds."""

import pytest

from lumara_web.chat.grounding import (
    adds_nothing,
    answer_fault,
    answers,
    asked_about,
    asked_for,
    covers,
    invented_words,
    mentions,
    related,
    unsupported_details,
)


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


def test_a_kind_of_the_thing_counts_and_another_thing_does_not():
    assert mentions("We got a black labrador called Juno in March.", "dog")
    assert not mentions("We got a black labrador called Juno in March.", "cat")
    assert not mentions("Our cat is called Pixel.", "dog")


def test_names_numbers_and_dates_must_come_from_the_sources():
    sources = ["What is my mortgage payment?", "My mortgage payment is 1,240 euros, taken "
               "on the 15th."]
    assert unsupported_details("Your mortgage payment is 1,240 euros.", sources) == []
    assert unsupported_details("It is 1,390 euros, paid to Santander in May.", sources) == [
        "1,390", "Santander", "May"]
    assert unsupported_details("Your dog is called Max.", ["Our cat is called Pixel."]) == [
        "Max"]


MEMORY = "Two years ago I sprained my right ankle playing football."


def test_a_word_no_source_holds_is_invented():
    question = "Which ankle did I sprain?"
    assert invented_words("Your left ankle did you sprain?", [question, MEMORY]) == ["left"]
    assert invented_words("You sprained your right ankle.", [question, MEMORY]) == []
    assert answer_fault("Your left ankle did you sprain?", question, [MEMORY]) == "unfaithful"
    assert answer_fault("You sprained your right ankle.", question, [MEMORY]) is None
    assert answer_fault("You sprained it in 2019.", question, [MEMORY]) == "detail"


def test_an_answer_that_only_repeats_the_question_adds_nothing():
    question = "How do I feed the sourdough starter?"
    memory = "I feed the sourdough starter twice a day with equal weights of flour and water."
    assert adds_nothing("Your sourdough starter is feeding your sourdough.", question,
                        [memory])
    assert not adds_nothing("You feed it flour and water twice a day.", question, [memory])


def test_a_memory_answers_a_question_about_its_words_or_its_subject():
    assert answers(MEMORY, "Which ankle did I sprain?", None)
    assert not answers(MEMORY, "Which knee did I hurt?", None)
    assert answers("We got a black labrador called Juno.", "When did we get her?",
                            "dog")
    assert not answers("My shoe size is 43.", "How much do I weigh?", None)


@pytest.mark.parametrize("question, asked", [
    ("Which ankle did I sprain?", ["ankle"]),
    ("What kind of music does Ines like?", ["music"]),
    ("What is my dentist's phone number?", ["phone", "number"]),
    ("What is my dog's name?", ["name"]),
    ("Where does my cousin live?", []),
    ("What time is the train?", []),
    ("What instrument do Dorota's daughters play?", ["instrument"]),
])
def test_what_a_question_asks_for(question, asked):
    assert asked_for(question) == asked


def test_a_memory_answers_only_when_it_holds_what_is_asked_for():
    dentist = "My dentist is Dr Ahmed Farouk at the Elm Street practice."
    assert not answers(dentist, "What is my dentist's phone number?", "dentist")
    assert related(dentist, "What is my dentist's phone number?", "dentist")
    assert answers("We got a black labrador called Juno.", "What is our dog's name?", "dog")
    assert answers("My cousin Ines teaches chemistry.", "What subject does Ines teach?", None)
    assert answers("Our Maine Coon sleeps on the shelf.", "Where does our cat sleep?", "cat")
    assert not related("My shoe size is 43.", "How much do I weigh?", None)


def test_an_answer_without_the_time_or_number_asked_for_misses_it():
    memories = ["We got a black labrador called Juno in March."]
    question = "What do you know about our dog? When did we get her?"
    assert answer_fault("Your dog Juno is a black labrador.", question, memories,
                        "When did we get her?") == "unfaithful"
    assert answer_fault("You got Juno in March.", question, memories,
                        "When did we get her?") is None
    assert answer_fault("Your mortgage is taken on the 15th.", "When is my mortgage taken?",
                        ["My mortgage payment is 1,240 euros, taken on the 15th."]) is None


def test_a_memory_covers_a_how_to_question_when_it_holds_most_of_its_words():
    memory = "I feed the sourdough starter twice a day with equal weights of flour and water."
    assert covers(memory, "How do I feed the sourdough starter?")
    assert not covers("My flat is on the third floor.", "How do I fix a flat tyre?")
    assert not covers(memory, "Tell me a joke.")
