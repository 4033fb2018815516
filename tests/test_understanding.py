"""chat.understanding: what each message is, and the text it says, asks or forgets."""

import pytest

from lumara_web.chat.understanding import INTENTS, understand


@pytest.mark.parametrize("message, intent, text", [
    # Statements: lead-ins and greetings are read off, the fact is kept as said.
    ("My sister Ana lives in Lisbon.", "statement", "My sister Ana lives in Lisbon."),
    ("Hello! My dog is called Rex.", "statement", "My dog is called Rex."),
    ("hey there, my brother Tom lives in Leeds", "statement", "My brother Tom lives in Leeds"),
    ("Remember that my locker code is 4471.", "statement", "My locker code is 4471."),
    ("Note: the plumber comes on Thursday.", "statement", "The plumber comes on Thursday."),
    ("Just so you know, I moved to Ghent.", "statement", "I moved to Ghent."),
    ("Actually, Ana moved to Porto.", "statement", "Ana moved to Porto."),
    ("Don't forget that I'm vegetarian.", "statement", "I'm vegetarian."),
    ("I want you to remember my sister is Ana", "statement", "My sister is Ana"),
    # A clause opening with a question word, then its subject, tells something.
    ("When I change the chain I shift to the smallest cog.", "statement",
     "When I change the chain I shift to the smallest cog."),
    # Questions about the user's memories, with or without a question mark.
    ("what's my locker code", "question", "what's my locker code"),
    ("Remind me when the plumber comes.", "question", "Remind me when the plumber comes."),
    ("Tell me what my dog is called.", "question", "Tell me what my dog is called."),
    ("Hi! What's my cat called?", "question", "What's my cat called?"),
    ("Can you remember where I parked?", "question", "Can you remember where I parked?"),
    ("What does she teach?", "question", "What does she teach?"),
    # General requests: the model answers.
    ("Hello! Tell me one short fact about the sea.", "general",
     "Tell me one short fact about the sea."),
    ("Tell me a joke.", "general", "Tell me a joke."),
    ("Write a haiku about autumn.", "general", "Write a haiku about autumn."),
    ("I'd like a recipe for pancakes.", "general", "I'd like a recipe for pancakes."),
    ("Remove the stains from a shirt", "general", "Remove the stains from a shirt"),
    ("What is the capital of France?", "general", "What is the capital of France?"),
    # Small talk, with its punctuation and emoticons.
    ("Hi", "small_talk", "Hi"),
    ("good morning :)", "small_talk", "good morning :)"),
    ("How are you?", "small_talk", "How are you?"),
    ("Thank you so much!!", "small_talk", "Thank you so much!!"),
    ("great, thanks a lot :D", "small_talk", "great, thanks a lot :D"),
    ("how's your day going?", "small_talk", "how's your day going?"),
    ("Oh, forget it.", "small_talk", "forget it."),  # "never mind", not a memory to delete
    # Forgetting: the text is what to forget, without "the memory about".
    ("Forget that my locker code is 4471.", "forget", "my locker code is 4471"),
    ("Delete the memory about the plumber.", "forget", "the plumber"),
    ("You can forget what I said about my passport.", "forget", "my passport"),
    ("please delete what I said about the gym", "forget", "the gym"),
    ("Can you forget that Tom lives in Leeds?", "forget", "Tom lives in Leeds"),
])
def test_each_message_gets_its_intent_and_text(message, intent, text):
    understood = understand(message)
    assert (understood.intent, understood.text) == (intent, text)
    assert understood.intent in INTENTS


@pytest.mark.parametrize("message, needs_memory", [
    ("What is my dog's name?", True),
    ("What is my employee number?", True),
    ("Do I have any allergies?", True),
    ("How do I make pancakes?", False),  # a memory answers it if there is one; else the model
    ("How do I reset the router?", False),
])
def test_only_questions_about_the_users_own_facts_need_a_memory(message, needs_memory):
    understood = understand(message)
    assert understood.intent == "question"
    assert understood.needs_memory is needs_memory


def test_deleting_something_that_is_not_a_memory_is_a_request():
    assert understand("Delete the duplicates from this list: a, b, a").intent == "general"
    assert understand("Delete the note about the dentist").intent == "forget"


@pytest.mark.parametrize("message", ["", "   ", "!!!", ":)"])
def test_nothing_to_read_is_small_talk(message):
    assert understand(message).intent == "small_talk"


def test_a_follow_up_refers_back_to_someone_named_before():
    from lumara_web.chat.understanding import refers_back
    assert refers_back("What does she teach?") and refers_back("when did we get her")
    assert not refers_back("What does my sister teach?")


def test_a_pronoun_with_its_noun_in_the_sentence_refers_to_nothing_earlier():
    from lumara_web.chat.understanding import refers_back
    assert not refers_back("How do plants make their food?")
    assert understand("How do plants make their food?").intent == "general"
    assert refers_back("Tell me about her.") and refers_back("What is his job?")
