"""ChatService.turn, called directly: FakeEmbedder + FakeEngine through create_app's wiring,
events read from the generator, the database checked afterwards."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from lumara_web import create_app
from lumara_web.chat import prompts
from lumara_web.chat.service import PERSONAL_ANSWER_TOKENS, history_window
from lumara_web.errors import LumaraError, NotFound, ValidationError
from lumara_web.inference.engine import TOKENS_PER_MESSAGE, GenerationRequest, fit_to_context
from lumara_web.inference.loading import BackgroundLoad
from lumara_web.memory.validation import NewMemory
from lumara_web.storage import conversation_store, db, review_store, store

from .fakes import FakeEmbedder, FakeEngine
from .helpers import GatedEngine, wait_idle

SISTER = "My sister Ana lives in Lisbon."
OIL = "The car needs an oil change every 15,000 kilometres."
SISTER_QUESTION = "Where does my sister Ana live?"


@pytest.fixture
def services(app):
    return app.extensions["lumara"]  # warmed up (make_app): a turn sees no "queued" events


@pytest.fixture
def chat(services):
    return services.chat


@pytest.fixture
def conn(services):
    connection = db.connect(services.settings["db_path"])
    yield connection
    connection.close()


def remember(services, conn, content: str, type: str = "knowledge"):
    memory, _ = services.memories.add(conn, NewMemory(content=content, type=type, tags=[],
                                                      metadata={}))
    return memory


def turn(chat, conn, content: str, conversation_id: int | None = None, stop=None) -> list:
    frame = {"content": content}
    if conversation_id is not None:
        frame["conversation_id"] = conversation_id
    return list(chat.turn(conn, chat.parse_request(frame), stop))


def kinds(events) -> list[str]:
    return [event["type"] for event in events]


def one(events, kind: str) -> dict:
    found = [event for event in events if event["type"] == kind]
    assert len(found) == 1, (kind, events)
    return found[0]


def answer(events) -> str:
    return "".join(event["text"] for event in events if event["type"] == "token")


def chat_requests(engine) -> list:
    return [r for r in engine.requests if r.purpose == "chat"]


def requests_for(engine, purpose: str) -> list:
    return [r for r in engine.requests if r.purpose == purpose]


def cosine(services, a: str, b: str) -> float:
    return float(np.dot(services.embeddings.embed(a), services.embeddings.embed(b)))


# -- questions ----------------------------------------------------------------------------
def test_a_question_streams_memories_first_then_tokens_then_done(services, chat, conn, engine):
    sister = remember(services, conn, SISTER)
    remember(services, conn, OIL)
    engine.enqueue("Your sister Ana lives in Lisbon.")
    events = turn(chat, conn, SISTER_QUESTION)

    assert kinds(events) == ["memories"] + ["token"] * 6 + ["done"]
    receipt = events[0]["items"]
    assert [item["id"] for item in receipt] == [sister.id]  # the oil change is unrelated
    assert receipt[0]["content"] == SISTER and receipt[0]["type"] == "knowledge"
    assert 0.35 <= receipt[0]["similarity"] <= 1
    assert answer(events) == "Your sister Ana lives in Lisbon."
    done = events[-1]
    assert done["status"] == "complete"
    stats = done["stats"]
    assert stats["source"] == "model" and stats["tokens"] == 6
    assert stats["ttft_ms"] is not None and stats["total_ms"] >= stats["ttft_ms"]
    assert stats["queue_ms"] >= 0
    assert set(stats) == {"ttft_ms", "total_ms", "tokens", "tokens_per_s", "queue_ms",
                          "source", "cut"} and stats["cut"] is None


def test_the_prompt_holds_the_system_prompt_first_then_the_memory_and_the_question(
        services, chat, conn, engine):
    remember(services, conn, SISTER)
    turn(chat, conn, SISTER_QUESTION)
    [sent] = chat_requests(engine)
    assert sent.messages[0] == {"role": "system", "content": prompts.SYSTEM_PROMPT}
    assert [m["role"] for m in sent.messages].count("system") == 1
    last = sent.messages[-1]
    assert last["role"] == "user"
    assert SISTER in last["content"]
    assert last["content"].endswith(f"Question: {SISTER_QUESTION}")
    assert last["content"].index(SISTER) < last["content"].index(SISTER_QUESTION)
    assert OIL not in str(sent.messages)
    assert sent.max_tokens == min(services.settings["answer_max_tokens"],
                                  PERSONAL_ANSWER_TOKENS)


def test_a_personal_question_without_a_memory_gets_the_no_memory_reply_without_the_model(
        services, chat, conn, engine):
    remember(services, conn, OIL)  # a memory, but not about this
    events = turn(chat, conn, "Where did I leave my passport?")
    assert events[0] == {"type": "memories", "items": []}
    assert answer(events) == prompts.no_memory_reply("passport")
    assert answer(events).startswith("I don't have a memory about your passport")
    assert kinds(events)[-1] == "done"
    assert events[-1]["stats"]["source"] == "template"
    assert chat_requests(engine) == []


def test_memories_of_something_else_do_not_answer_a_personal_question(
        services, chat, conn, engine):
    """Only a cat is remembered: asked about a dog, the model never sees the cat."""
    cat = remember(services, conn, "My cat's name is Pixel.")
    question = "What is my dog's name?"
    assert cosine(services, cat.content, question) >= services.settings["chat_memory_threshold"]
    events = turn(chat, conn, question)
    assert one(events, "memories")["items"] == []
    assert answer(events) == prompts.no_memory_reply("dog")
    assert "your dog" in answer(events) and "Pixel" not in answer(events)
    assert chat_requests(engine) == []


def test_an_answer_naming_what_no_memory_holds_gives_way_to_the_memory(
        services, chat, conn, engine):
    pixel = remember(services, conn, "Our cat is called Pixel.")
    engine.enqueue("Your cat is called Max.")  # a name the memory does not hold
    events = turn(chat, conn, "What is our cat called?")
    assert one(events, "memories")["items"][0]["id"] == pixel.id
    done = one(events, "done")
    assert done["text"] == prompts.memory_reply(pixel.content)
    assert "Max" not in done["html"] and "your cat is called Pixel" in done["html"]
    [_, stored] = conversation_store.list_messages(conn, done["conversation_id"])
    assert stored.content == done["text"]  # what the conversation keeps, and replays


@pytest.mark.parametrize("said, expected", [
    ("Your left ankle did you sprain?", "memory"),  # a word of its own
    ("Your ankle did you sprain.", "memory"),  # nothing from the memory
    ("You sprained your right ankle.", "model"),
])
def test_an_unfaithful_answer_gives_way_to_the_memory(services, chat, conn, engine, said,
                                                      expected):
    ankle = remember(services, conn, "Two years ago I sprained my right ankle playing football.")
    engine.enqueue(said)
    done = one(turn(chat, conn, "Which ankle did I sprain playing football?"), "done")
    assert done["text"] == (said if expected == "model" else prompts.memory_reply(ankle.content))


def test_a_memory_about_the_subject_without_what_was_asked_is_only_the_closest(
        services, chat, conn, engine):
    dentist = remember(services, conn, "My dentist is Dr Ahmed Farouk at the Elm Street "
                                       "practice.")
    engine.enqueue("Your dentist's phone number is 0161 496 0000.")
    done = one(turn(chat, conn, "What is my dentist's phone number?"), "done")
    assert done["text"] == prompts.closest_memory_reply(dentist.content)
    assert "0161" not in done["text"] and done["text"].startswith("I don't have a memory")


def test_a_question_about_someone_the_memories_name_is_answered_from_them(
        services, chat, conn, engine):
    """No "my" in it, yet only the memories can answer: an unknown detail is not guessed."""
    remember(services, conn, "My sister Dorota works as a paediatric nurse in Leeds.")
    remember(services, conn, "My daughter Liv plays the trumpet.")
    engine.enqueue("Her birthday is on 20 May.")
    events = turn(chat, conn, "When is Dorota's birthday?")
    assert all("Dorota" in item["content"] for item in one(events, "memories")["items"])
    assert "20 May" not in one(events, "done")["text"]
    assert one(events, "done")["text"].startswith("I don't have a memory")


def test_a_grounded_answer_is_kept(services, chat, conn, engine):
    remember(services, conn, "Our cat is called Pixel.")
    engine.enqueue("Your cat is called Pixel.")
    events = turn(chat, conn, "What is our cat called?")
    assert answer(events) == "Your cat is called Pixel."
    assert "Pixel" in one(events, "done")["html"]


def test_a_follow_up_is_looked_up_with_the_question_before_it(services, chat, conn, engine):
    marek = remember(services, conn, "My cousin Marek teaches history.")
    remember(services, conn, OIL)
    assert cosine(services, marek.content, "What does he teach?") < \
        services.settings["chat_memory_threshold"]  # alone, the follow-up finds nothing
    engine.enqueue("He teaches history.")
    first = turn(chat, conn, "Where does my cousin Marek live?")
    engine.enqueue("He teaches history.")
    events = turn(chat, conn, "What does he teach?", first[-1]["conversation_id"])
    assert [item["id"] for item in one(events, "memories")["items"]][:1] == [marek.id]
    assert answer(events) == "He teaches history."


@pytest.mark.parametrize("question", ["What is the capital of France?",
                                      "Tell me a story about the sea."])
def test_a_general_question_goes_to_the_model_even_without_memories(chat, conn, engine,
                                                                    question):
    engine.enqueue("A reply from the model.")
    events = turn(chat, conn, question)
    assert answer(events) == "A reply from the model."
    assert events[-1]["stats"]["source"] == "model"
    assert chat_requests(engine)[0].messages[-1]["content"].endswith(question)


def test_an_answer_caught_in_a_loop_ends_after_its_first_round(chat, conn, engine):
    engine.enqueue("A joke: I'm a doctor, I'm a doctor, I'm a doctor, I'm a doctor, "
                   "I'm a doctor, I'm a doctor, I'm a doctor, I'm a doctor.")
    events = turn(chat, conn, "Tell me a joke.")
    done = one(events, "done")
    assert done["status"] == "complete"
    [_, stored] = conversation_store.list_messages(conn, done["conversation_id"])
    assert stored.content == "A joke: I'm a doctor"
    assert stored.content in done["html"] and done["html"].count("doctor") == 1
    assert kinds(events).count("token") < 20  # generation stopped, not run to the end


def test_small_talk_gets_a_templated_reply(chat, conn, engine):
    events = turn(chat, conn, "Thanks!")
    assert answer(events) == "You're welcome!"
    assert kinds(events)[-1] == "done"
    assert chat_requests(engine) == [] and requests_for(engine, "extract") == []


@pytest.mark.parametrize("request_", ["Hello! Tell me one short fact about the sea.",
                                      "Write a haiku about autumn.", "How do I make pancakes?"])
def test_requests_and_how_tos_are_answered_by_the_model_not_noted(chat, conn, engine,
                                                                  request_):
    engine.enqueue("A reply from the model.")
    events = turn(chat, conn, request_)
    assert answer(events) == "A reply from the model."
    assert requests_for(engine, "extract") == []  # nothing is taken as a memory
    assert [kind for kind in kinds(events) if kind.startswith("memory_")] == []


def test_a_greeting_before_a_statement_is_not_part_of_the_memory(services, chat, conn, engine):
    engine.enqueue({"content": "My dog is called Rex.", "tags": []}, "extract")
    events = turn(chat, conn, "Hello! My dog is called Rex.")
    assert answer(events) == "Noted: your dog is called Rex."
    [extract] = requests_for(engine, "extract")
    assert extract.messages[-1] == {"role": "user", "content": "My dog is called Rex."}
    assert one(events, "memory_saved")["memory"]["content"] == "My dog is called Rex."


# -- forgetting -------------------------------------------------------------------------
def test_a_request_to_forget_offers_the_matching_memories_and_deletes_nothing(
        services, chat, conn, engine):
    locker = remember(services, conn, "My locker code is 4471.")
    remember(services, conn, OIL)
    events = turn(chat, conn, "Forget that my locker code is 4471.")
    offered = one(events, "forget_candidates")
    assert [item["id"] for item in offered["items"]] == [locker.id]
    assert offered["items"][0] == locker.to_dict()
    assert answer(events) == prompts.forget_reply("my locker code is 4471", 1)
    assert one(events, "memories")["items"] == []  # offered, not used for an answer
    assert store.get_memory(conn, locker.id) == locker  # deleted only once the user confirms
    assert chat_requests(engine) == []
    assert requests_for(engine, "extract") == []


def test_a_request_to_forget_what_was_never_said_finds_nothing(services, chat, conn):
    remember(services, conn, OIL)
    events = turn(chat, conn, "Please forget my old address.")
    assert one(events, "forget_candidates")["items"] == []
    assert answer(events) == prompts.forget_reply("my old address", 0)
    assert store.count_memories(conn) == 1


# -- statements and memories ------------------------------------------------------------
def test_a_statement_is_acknowledged_then_extracted_and_saved(services, chat, conn, engine):
    statement = "My dog is called Rex."
    engine.enqueue({"content": "My dog is called Rex.", "tags": ["pets", "dog"]}, "extract")
    events = []
    for event in chat.turn(conn, chat.parse_request({"content": statement})):
        if event["type"] == "done":  # the acknowledgement comes before any extraction
            assert requests_for(engine, "extract") == []
        events.append(event)

    assert kinds(events) == ["memories"] + ["token"] * 6 + ["done", "memory_saved"]
    assert answer(events) == "Noted: your dog is called Rex."
    assert events[-2]["stats"]["source"] == "template"
    [extract] = requests_for(engine, "extract")
    assert extract.messages[-1] == {"role": "user", "content": statement}
    assert extract.json_schema is not None
    assert chat_requests(engine) == []

    saved = events[-1]
    assert saved["confidence"] >= services.settings["extraction_save_confidence"]
    memory = store.get_memory(conn, saved["memory"]["id"])
    assert memory.content == "My dog is called Rex."
    assert memory.source == "chat" and memory.tags == ["pets", "dog"]
    user_message = conversation_store.list_messages(conn, events[-2]["conversation_id"])[0]
    assert memory.metadata == {"conversation_id": events[-2]["conversation_id"],
                               "message_id": user_message.id}
    assert user_message.role == "user" and user_message.content == statement


def test_a_hedged_statement_becomes_a_pending_suggestion(services, chat, conn, engine):
    engine.enqueue({"content": "My dog is called Rex.", "tags": ["pets"]}, "extract")
    events = turn(chat, conn, "I think my dog is called Rex.")
    suggested = one(events, "memory_suggested")
    assert kinds(events)[-1] == "memory_suggested"
    assert "sounds uncertain" in suggested["reasons"]
    settings = services.settings
    assert settings["extraction_suggest_confidence"] <= suggested["suggestion"]["confidence"] \
        < settings["extraction_save_confidence"]
    [pending] = review_store.list_suggestions(conn)
    assert pending.id == suggested["suggestion"]["id"]
    assert pending.content == "My dog is called Rex." and pending.status == "pending"
    assert pending.conversation_id == events[kinds(events).index("done")]["conversation_id"]
    assert pending.message_id is not None
    assert store.count_memories(conn) == 0


def test_an_extraction_unlike_the_statement_keeps_the_users_own_words(chat, conn, engine):
    engine.enqueue({"content": "I enjoy skiing in the Alps.", "tags": ["sport"]}, "extract")
    events = turn(chat, conn, "My dog is called Rex.")
    saved = one(events, "memory_saved")["memory"]
    assert saved["content"] == "My dog is called Rex."  # never the model's invention
    assert [memory.content for memory in store.list_memories(conn)[0]] == [
        "My dog is called Rex."]


@pytest.mark.parametrize("said, proposed", [
    ("My sister Ana lives in Lisbon and works as an architect.",
     "My sister Ana lives in Lisbon."),  # the job dropped: the whole statement is kept
    ("Ana moved to Porto last month.", "Amina moved to Porto last month."),  # a name invented
])
def test_a_memory_never_invents_or_drops_what_was_said(chat, conn, engine, said, proposed):
    engine.enqueue({"content": proposed, "tags": ["family"]}, "extract")
    events = turn(chat, conn, said)
    memory = next(event.get("memory") or event.get("suggestion") for event in events
                  if event["type"] in ("memory_saved", "memory_suggested"))
    assert memory["content"] == said


def test_unusable_extraction_output_saves_nothing(chat, conn, engine):
    engine.enqueue("this is not json", "extract")
    events = turn(chat, conn, "My dog is called Rex.")
    assert kinds(events)[-1] == "done"
    assert store.count_memories(conn) == 0


@pytest.mark.parametrize("statement", ["My dog is called Rex.",
                                       "I think my dog is called Rex."])  # save and suggest levels
def test_a_duplicate_is_reported_and_nothing_is_saved(services, chat, conn, engine, statement):
    existing = remember(services, conn, "My dog is called Rex.")
    engine.enqueue({"content": "My dog is called Rex.", "tags": ["pets"]}, "extract")
    events = turn(chat, conn, statement)
    exists = one(events, "memory_exists")
    assert exists["existing"]["memory"]["id"] == existing.id
    assert exists["existing"]["similarity"] >= services.settings["duplicate_threshold"]
    assert exists["proposal"]["content"] == "My dog is called Rex."
    assert "memory_saved" not in kinds(events) and "memory_suggested" not in kinds(events)
    assert store.count_memories(conn) == 1
    assert review_store.list_suggestions(conn) == []


def test_a_duplicate_below_the_skip_level_is_suggested_not_dropped(services, chat, conn,
                                                                   engine):
    """Above the duplicate threshold but not the same words: most likely a rewording, yet
    possibly a contradiction no word shows — the user decides."""
    existing = remember(services, conn, "My dog is called Rex.")
    statement = "My old dog is called Rex."
    assert services.settings["duplicate_threshold"] <= cosine(services, existing.content,
                                                              statement) \
        < services.settings["chat_skip_duplicate_threshold"]
    engine.enqueue({"content": statement, "tags": ["pets"]}, "extract")
    events = turn(chat, conn, statement)
    suggested = one(events, "memory_suggested")
    assert f"may repeat memory {existing.id}" in suggested["reasons"]
    assert "memory_exists" not in kinds(events)
    assert store.count_memories(conn) == 1
    [suggestion] = review_store.list_suggestions(conn)
    assert suggestion.content == statement


def test_a_contradiction_found_by_cues_is_recorded_for_review(services, chat, conn, engine):
    lisbon = remember(services, conn, "My sister lives in Lisbon.")
    statement = "My sister lives in Madrid."
    similarity = cosine(services, lisbon.content, statement)
    assert services.settings["contradiction_threshold"] <= similarity \
        < services.settings["duplicate_threshold"]
    engine.enqueue({"content": statement, "tags": ["family"]}, "extract")
    events = turn(chat, conn, statement)

    assert kinds(events)[-2:] == ["memory_saved", "contradiction"]
    saved, found = events[-2], events[-1]
    assert found["memory"]["id"] == saved["memory"]["id"]
    assert found["existing_memory"]["id"] == lisbon.id
    assert found["verdict"]["contradicts"] is True and found["verdict"]["source"] == "cues"
    assert requests_for(engine, "judge") == []  # the cues decided; no model call
    [pending] = review_store.list_contradictions(conn)
    assert pending.id == found["contradiction"]["id"]
    assert (pending.memory_id, pending.existing_memory_id) == (saved["memory"]["id"], lisbon.id)
    assert pending.similarity == pytest.approx(similarity, abs=1e-3)
    assert store.count_memories(conn) == 2  # saved anyway: the user resolves it


def test_an_update_far_below_the_cosine_floor_is_offered_against_the_old_memory(
        services, chat, conn, engine):
    """The shared subject is the evidence: the keyword index finds the old memory, the
    clause cues see the new value, and the update is saved (not only suggested, although
    it is not about the user) so that its contradiction can be settled."""
    rabbit = remember(services, conn, "The rabbit is called Clover and sleeps in a wicker "
                                      "basket in the hallway next to the old radiator.")
    statement = "The rabbit is called Pepper now."
    assert cosine(services, rabbit.content, statement) < \
        services.settings["contradiction_cue_threshold"]
    engine.enqueue({"content": statement, "tags": ["pets"]}, "extract")
    events = turn(chat, conn, statement)
    found = one(events, "contradiction")
    assert found["existing_memory"]["id"] == rabbit.id
    assert found["memory"]["id"] == one(events, "memory_saved")["memory"]["id"]
    assert "Clover" in found["verdict"]["explanation"]


def test_an_addition_to_a_memory_is_never_flagged(services, chat, conn, engine):
    remember(services, conn, "My cousin Marek lives in Krakow and teaches history.")
    statement = "My cousin Marek also plays the drums in a band."
    engine.enqueue({"content": statement, "tags": ["family"]}, "extract")
    events = turn(chat, conn, statement)
    assert "contradiction" not in kinds(events)
    assert review_store.list_contradictions(conn) == []


def test_a_close_one_word_swap_is_recorded_for_review_without_the_model(
        services, chat, conn, engine):
    earlier = remember(services, conn, "I keep my printer in the spare room upstairs by "
                                       "the window.")
    statement = "I keep my printer in the garage upstairs by the window."
    # Above the duplicate threshold, yet not merged: a swapped place is no rewording.
    assert cosine(services, earlier.content, statement) >= \
        services.settings["duplicate_threshold"]
    engine.enqueue({"content": statement, "tags": ["home"]}, "extract")
    events = turn(chat, conn, statement)
    assert "memory_exists" not in kinds(events)
    found = one(events, "contradiction")
    assert found["existing_memory"]["id"] == earlier.id
    assert found["verdict"]["source"] == "cues+cosine"
    assert requests_for(engine, "judge") == []
    assert len(review_store.list_contradictions(conn)) == 1


@pytest.mark.parametrize("existing, statement", [
    ("I love my morning coffee.", "I hate my morning coffee."),
    ("I hate my morning coffee.", "I love my morning coffee.")])
def test_opposite_words_are_a_contradiction_whichever_memory_came_first(
        services, chat, conn, engine, existing, statement):
    earlier = remember(services, conn, existing)
    assert 0.70 <= cosine(services, existing, statement) < 0.85
    engine.enqueue({"content": statement, "tags": ["coffee"]}, "extract")
    events = turn(chat, conn, statement)
    found = one(events, "contradiction")
    assert found["existing_memory"]["id"] == earlier.id
    assert found["verdict"]["source"] == "cues"
    assert "love" in found["verdict"]["explanation"] and "hate" in found["verdict"]["explanation"]
    assert requests_for(engine, "judge") == []


@pytest.mark.parametrize("contradicts", [True, False])
def test_without_cues_the_model_judges_a_candidate(services, chat, conn, engine, contradicts):
    services.settings["contradiction_model_judge"] = True  # off by default (docs/QUALITY.md)
    # Three words apart, no cue (a one-word swap or a different value would be one).
    blue = remember(services, conn, "Tennis is what I do with them at the club on the "
                                    "weekend.")
    statement = "Chess is what I do with them at the school on the holiday."
    assert 0.70 <= cosine(services, blue.content, statement) < 0.85
    engine.enqueue({"content": statement, "tags": ["sport"]}, "extract")
    engine.enqueue({"contradicts": contradicts, "confidence": 0.9,
                    "explanation": "Different favourite sports."}, "judge")
    events = turn(chat, conn, statement)

    [judged] = requests_for(engine, "judge")
    assert judged.messages[-1]["content"] == f"A: {blue.content}\nB: {statement}"
    if contradicts:
        found = one(events, "contradiction")
        assert found["verdict"] == {"contradicts": True, "confidence": 0.9, "source": "model",
                                    "explanation": "Different favourite sports."}
        assert len(review_store.list_contradictions(conn)) == 1
    else:
        assert kinds(events)[-1] == "memory_saved"
        assert review_store.list_contradictions(conn) == []


# -- conversations and messages -----------------------------------------------------------
def test_both_messages_are_saved_with_the_receipt_and_stats(services, chat, conn, engine):
    remember(services, conn, SISTER)
    engine.enqueue("Your sister Ana lives in Lisbon.")
    events = turn(chat, conn, SISTER_QUESTION)
    done = events[-1]
    user, assistant = conversation_store.list_messages(conn, done["conversation_id"])
    assert (user.role, user.content, user.status) == ("user", SISTER_QUESTION, "complete")
    assert assistant.id == done["message_id"]
    assert (assistant.role, assistant.status) == ("assistant", "complete")
    assert assistant.content == "Your sister Ana lives in Lisbon."
    assert assistant.memories == events[0]["items"]
    assert assistant.stats == done["stats"]


def test_a_new_conversation_gets_a_title_and_is_reused_by_id(chat, conn):
    first = turn(chat, conn, "Hello!")[-1]
    conversation = conversation_store.get_conversation(conn, first["conversation_id"])
    assert conversation.title == "Hello!"
    second = turn(chat, conn, "Thanks!", conversation_id=conversation.id)[-1]
    assert second["conversation_id"] == conversation.id
    assert conversation_store.get_conversation(conn, conversation.id).message_count == 4
    assert conversation_store.list_conversations(conn)[1] == 1


def test_a_long_first_message_gets_a_short_title(chat, conn):
    content = "I " + " ".join(["really"] * 30) + " like green tea."
    done = turn(chat, conn, content)[-1]
    title = conversation_store.get_conversation(conn, done["conversation_id"]).title
    assert title.endswith("…") and len(title) <= 61
    assert content.startswith(title[:-1])


def test_an_unknown_conversation_is_not_found_and_nothing_is_saved(chat, conn):
    with pytest.raises(NotFound) as missing:
        turn(chat, conn, "Hello!", conversation_id=999)
    assert missing.value.code == "conversation_not_found"
    assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0


def test_earlier_turns_are_replayed_exactly_as_they_were_sent(services, chat, conn, engine):
    remember(services, conn, SISTER)
    engine.enqueue("Your sister Ana lives in Lisbon.")
    first = turn(chat, conn, SISTER_QUESTION)
    conversation_id = first[-1]["conversation_id"]
    turn(chat, conn, "My dog is called Rex.", conversation_id=conversation_id)
    engine.enqueue("Paris.")
    turn(chat, conn, "What is the capital of France?", conversation_id=conversation_id)

    earlier, later = chat_requests(engine)
    # The whole first prompt is a prefix of the second: llama.cpp reuses its state.
    assert later.messages[:len(earlier.messages)] == earlier.messages
    # The statement and its templated "Noted: …" are not replayed: the model would learn
    # to answer questions with "Noted: …".
    assert later.messages[len(earlier.messages):] == [
        {"role": "assistant", "content": "Your sister Ana lives in Lisbon."},
        {"role": "user", "content": prompts.question_turn("What is the capital of France?",
                                                          [])},
    ]


def one_long_conversation(make_app, limit: int, questions: list[str],
                          replies: list[str] | None = None) -> FakeEngine:
    """Ask `questions` in one conversation with chat_history_messages=`limit`; the engine
    keeps every prompt it was sent."""
    engine = FakeEngine()
    app = make_app(engine=engine, chat_history_messages=limit)
    chat = app.extensions["lumara"].chat
    conn = db.connect(app.extensions["lumara"].settings["db_path"])
    try:
        conversation_id = None
        for index, question in enumerate(questions):
            if replies:
                engine.enqueue(replies[index])
            done = turn(chat, conn, question, conversation_id=conversation_id)[-1]
            assert done["status"] == "complete"
            conversation_id = done["conversation_id"]
    finally:
        conn.close()
    return engine


@pytest.mark.parametrize("limit", [3, 4])
def test_a_long_history_is_trimmed_to_the_setting(make_app, limit):
    engine = one_long_conversation(
        make_app, limit, [f"What is fact number {i}? " + "padding " * 500 for i in range(8)],
        [f"Answer number {i}. " + "blah " * 300 for i in range(8)])
    last = chat_requests(engine)[-1].messages
    fixed = 1 + len(prompts.example_turns())
    replayed = last[fixed:-1]
    assert 0 < len(replayed) <= limit
    assert replayed[0]["role"] == "user"  # never opens on an answer
    assert "fact number 6" in replayed[-2]["content"] and "number 6" in replayed[-1]["content"]
    assert "fact number 7" in last[-1]["content"]
    # And the engine's context fitting keeps such a prompt within any budget.
    def count(text):
        return len(text.split())
    for budget in (100, 600, 2000):
        fitted = fit_to_context(last, count, budget)
        assert sum(count(m["content"]) + TOKENS_PER_MESSAGE for m in fitted) <= budget
        assert fitted[-1]["content"].endswith(last[-1]["content"][-40:])


def test_the_history_window_moves_in_steps_so_prompts_keep_their_prefix(make_app):
    limit = 8
    engine = one_long_conversation(
        make_app, limit, [f"What is the tallest mountain number {i}?" for i in range(12)])
    requests = chat_requests(engine)
    fixed = 1 + len(prompts.example_turns())
    assert len(requests) == 12
    assert all(len(request.messages) - fixed - 1 <= limit for request in requests)
    assert all(request.messages[fixed]["role"] == "user" for request in requests[1:])
    kept = sum(later.messages[:len(earlier.messages)] == earlier.messages
               for earlier, later in zip(requests, requests[1:]))
    # A window sliding one turn at a time keeps no prefix once full (4 of 11); in steps of
    # half the window every other prompt continues the one before.
    assert kept == 7


@pytest.mark.parametrize("count, limit, replayed", [
    (0, 20, 0), (19, 20, 19), (20, 20, 20), (21, 20, 11), (30, 20, 20), (31, 20, 11),
    (5, 3, 3), (6, 3, 3), (7, 1, 1)])
def test_history_window_sizes(count, limit, replayed):
    assert history_window(count, limit) == replayed


# -- stopping and failing -----------------------------------------------------------------
def test_stop_mid_answer_saves_the_partial_answer_as_stopped(chat, conn, engine):
    engine.enqueue("one two three four five six seven eight nine ten")
    stop = threading.Event()
    events = []
    for event in chat.turn(conn, chat.parse_request({"content": "Can you count to ten?"}),
                           stop):
        events.append(event)
        if event["type"] == "token" and event["text"] == "two ":
            stop.set()
    assert answer(events) == "one two "
    done = events[-1]
    assert done["type"] == "done" and done["status"] == "stopped"
    assert done["stats"]["tokens"] == 2
    saved = conversation_store.list_messages(conn, done["conversation_id"])[-1]
    assert (saved.content, saved.status) == ("one two ", "stopped")
    wait_idle(engine)  # the job ended too, freeing the model


def test_stop_while_queued_cancels_the_job_before_it_reaches_the_model(make_app):
    engine = GatedEngine()
    app = make_app(engine=engine)
    chat = app.extensions["lumara"].chat
    blocker = engine.submit(GenerationRequest([{"role": "user", "content": "blocker"}],
                                              max_tokens=5))
    assert blocker.started.wait(10)
    stop = threading.Event()
    conn = db.connect(app.extensions["lumara"].settings["db_path"])
    try:
        events = []
        for event in chat.turn(conn, chat.parse_request(
                {"content": "What is the capital of France?"}), stop):
            events.append(event)
            if event["type"] == "queued":
                stop.set()
        assert events[0] == {"type": "queued", "position": 2, "model_loading": False}
        assert kinds(events) == ["queued", "memories", "done"]
        assert events[-1]["status"] == "stopped" and events[-1]["stats"]["tokens"] == 0
    finally:
        conn.close()
    engine.open()
    assert blocker.text() == "OK."
    wait_idle(engine)
    assert [r.messages[-1]["content"] for r in chat_requests(engine)] == ["blocker"]


class FailsMidAnswer(FakeEngine):
    """Chat answers stream two tokens, then fail with `failure`."""

    def __init__(self, failure: BaseException):
        super().__init__()
        self.failure = failure

    def _generate(self, model, job):
        if job.request.purpose != "chat":
            yield from super()._generate(model, job)
            return
        self.requests.append(job.request)
        yield "Your sister "
        yield "lives "
        raise self.failure


@pytest.mark.parametrize("failure, code", [
    (RuntimeError("llama_decode returned -1"), "generation_failed"),
    (LumaraError("The model ran out of memory.", code="out_of_memory"), "out_of_memory")])
def test_an_engine_error_mid_answer_sends_an_error_and_saves_the_partial_answer(
        make_app, failure, code):
    engine = FailsMidAnswer(failure)
    app = make_app(engine=engine)
    chat = app.extensions["lumara"].chat
    conn = db.connect(app.extensions["lumara"].settings["db_path"])
    try:
        events = turn(chat, conn, "What is the capital of France?")
        assert kinds(events) == ["memories", "token", "token", "error"]
        assert events[-1]["code"] == code and events[-1]["message"]
        user, assistant = conversation_store.list_messages(conn, 1)
        assert (assistant.content, assistant.status) == ("Your sister lives ", "error")
        # The worker lives on and serves the next request.
        assert engine.submit(GenerationRequest([{"role": "user", "content": "x"}],
                                               max_tokens=5, purpose="extract")).text() == "OK."
    finally:
        conn.close()


class SlowLoadingEngine(FakeEngine):
    """A FakeEngine whose model loads only when the test says so."""

    def __init__(self):
        super().__init__()
        self.loaded = threading.Event()

        def load():
            assert self.loaded.wait(10), "the test never let the model load"
            return "fake model"

        self.model = BackgroundLoad("chat model", loader=load)


def test_a_question_waiting_for_the_model_to_load_is_told_so(tmp_path):
    engine = SlowLoadingEngine()  # not make_app: the warm-up must still be queued here
    app = create_app({"data_dir": str(tmp_path), "embedder": FakeEmbedder(), "engine": engine})
    chat = app.extensions["lumara"].chat
    conn = db.connect(app.extensions["lumara"].settings["db_path"])
    try:
        events = []
        for event in chat.turn(conn, chat.parse_request(
                {"content": "What is the capital of France?"})):
            events.append(event)
            if event["type"] == "queued" and event["model_loading"]:
                engine.loaded.set()
        queued = [event for event in events if event["type"] == "queued"]
        # Behind the two start-up warm-up requests (answer and extraction prompts; the judge's
        # only when the model judges), while the model loads.
        assert queued[0] == {"type": "queued", "position": 3, "model_loading": True}
        positions = [event["position"] for event in queued]
        assert positions == sorted(positions, reverse=True)
        assert events[-1]["type"] == "done" and events[-1]["status"] == "complete"
    finally:
        engine.loaded.set()
        conn.close()


def test_a_refused_question_reports_the_conversation_it_was_saved_in(make_app):
    # The queue is full: the question is refused, but the message is kept, so the error
    # must say where, for the client to carry on in that conversation.
    engine = FakeEngine(max_queue=1)
    services = make_app(engine=engine).extensions["lumara"]
    conn = db.connect(services.settings["db_path"])
    try:
        remember(services, conn, SISTER)
        engine.submit = lambda *args, **kwargs: (_ for _ in ()).throw(
            LumaraError("The chat model is busy.", code="busy", status=503))
        events = turn(services.chat, conn, SISTER_QUESTION)
        error = one(events, "error")
        assert error["code"] == "busy"
        saved = conversation_store.get_conversation(conn, error["conversation_id"])
        assert [m.content for m in conversation_store.list_messages(conn, saved.id)] == [
            SISTER_QUESTION]
    finally:
        conn.close()


def test_an_answer_ends_where_the_model_starts_writing_the_prompts_layout(chat, conn,
                                                                          engine):
    engine.enqueue("Paris is the capital of France.\n\nQuestion: What is the capital of Spain?")
    done = turn(chat, conn, "What is the capital of France?")[-1]
    assert done["text"] == "Paris is the capital of France."
    assert chat_requests(engine)[-1].stop == prompts.ANSWER_STOPS


def test_an_answer_that_says_a_line_again_ends_before_the_repeat(chat, conn, engine):
    engine.enqueue('A: "What do you call a fish with no eyes?"\nA: "A fsh."\n'
                   'A: "What do you call a fish with no eyes?"\nA: "A fsh."\nA: more')
    done = one(turn(chat, conn, "Tell me a joke."), "done")
    assert done["text"] == 'A: "What do you call a fish with no eyes?"\nA: "A fsh."'
    engine.enqueue('A: "I am a memory assistant."\n\nA: "I am a memory assistant."')
    done = one(turn(chat, conn, "Tell me a joke."), "done")  # the repeat is the last line
    assert done["text"] == 'A: "I am a memory assistant."'
    engine.enqueue("Steps:\n- mix\n- mix\n- bake for 20 minutes\n")  # short lines may repeat
    done = one(turn(chat, conn, "How do I bake bread?"), "done")
    assert done["text"] == "Steps:\n- mix\n- mix\n- bake for 20 minutes"


def test_an_answer_that_did_not_end_by_itself_says_why_and_keeps_saying_it(
        services, chat, conn, engine):
    """A bounded length for each kind of question; 'done' and the stored message say when
    an answer was cut (length or repetition), so the page shows it now and after a reload."""
    services.settings["answer_max_tokens"] = 12
    engine.enqueue(" ".join(f"word{i}" for i in range(40)))  # runs past its limit
    done = one(turn(chat, conn, "Tell me a long story about the sea."), "done")
    assert done["stats"]["cut"] == "length" and len(done["text"].split()) == 12
    [_, stored] = conversation_store.list_messages(conn, done["conversation_id"])
    assert stored.stats["cut"] == "length"

    services.settings["answer_max_tokens"] = 200
    engine.enqueue("Sure. " + "Ha ha ha ha, " * 10)
    done = one(turn(chat, conn, "Tell me a joke."), "done")
    assert done["stats"]["cut"] == "repetition"

    engine.enqueue("The sea is salty.")  # ends by itself
    done = one(turn(chat, conn, "Tell me one fact about the sea."), "done")
    assert done["stats"]["cut"] is None

    remember(services, conn, SISTER)
    turn(chat, conn, SISTER_QUESTION)
    # A question about the user's life gets a shorter budget than a general one.
    assert chat_requests(engine)[-1].max_tokens < 200


def test_what_a_turn_remembered_is_kept_with_its_answer_as_it_stands_now(
        services, chat, conn, engine):
    lisbon = remember(services, conn, "My sister lives in Lisbon.")
    statement = "My sister lives in Madrid."
    engine.enqueue({"content": statement, "tags": ["family"]}, "extract")
    events = turn(chat, conn, statement)
    saved, found = one(events, "memory_saved"), one(events, "contradiction")
    assert saved["outcome"] == {"kind": "saved", "memory_id": saved["memory"]["id"],
                                "content": statement}
    done = one(events, "done")

    def outcomes() -> list[dict]:
        _, messages = services.conversations.get(conn, done["conversation_id"])
        [answer_message] = [message for message in messages
                            if message.id == done["message_id"]]
        assert all(not message.outcomes for message in messages if message is not answer_message)
        return answer_message.outcomes

    first, second = outcomes()
    assert first == {**saved["outcome"], "state": "kept", "changed": False}
    assert second == {**found["outcome"], "state": "pending", "resolution": None}
    assert (second["memory_id"], second["existing_memory_id"]) == (saved["memory"]["id"],
                                                                    lisbon.id)
    assert second["explanation"] == found["contradiction"]["explanation"]

    services.review.resolve_contradiction(conn, found["contradiction"]["id"], "keep_original")
    first, second = outcomes()
    assert first["state"] == "gone"  # keeping the original put the new one in the trash
    assert (second["state"], second["resolution"]) == ("resolved", "keep_original")


# -- redoing the last turn ----------------------------------------------------------------
def redo(chat, conn, conversation_id: int, how: str, content: str | None = None) -> list:
    frame = {"conversation_id": conversation_id, "redo": how}
    if content is not None:
        frame["content"] = content
    return list(chat.turn(conn, chat.parse_request(frame)))


def conversation_messages(services, conn, conversation_id: int) -> list:
    return services.conversations.get(conn, conversation_id)[1]


def test_regenerate_answers_the_last_question_again_in_its_place(
        services, chat, conn, engine):
    remember(services, conn, SISTER)
    engine.enqueue("Your sister Ana lives in Lisbon.")
    first = turn(chat, conn, SISTER_QUESTION)
    conversation_id = one(first, "done")["conversation_id"]
    engine.enqueue("Ana lives in Lisbon.")
    events = redo(chat, conn, conversation_id, "regenerate")
    taken = one(events, "redo")
    assert taken["removed_message_ids"] == [one(first, "done")["message_id"] - 1,
                                            one(first, "done")["message_id"]]
    assert answer(events) == "Ana lives in Lisbon."
    messages = conversation_messages(services, conn, conversation_id)
    assert [(m.role, m.content) for m in messages] == [
        ("user", SISTER_QUESTION), ("assistant", "Ana lives in Lisbon.")]
    assert messages[1].id == one(events, "done")["message_id"]


def test_regenerating_a_statements_answer_keeps_what_it_remembered(
        services, chat, conn, engine):
    engine.enqueue({"content": "My dog is called Rex.", "tags": []}, "extract")
    first = turn(chat, conn, "My dog is called Rex.")
    saved = one(first, "memory_saved")["memory"]
    conversation_id = one(first, "done")["conversation_id"]
    events = redo(chat, conn, conversation_id, "regenerate")
    assert "memory_saved" not in kinds(events) and one(events, "redo")["trashed"] == []
    [_, reply] = conversation_messages(services, conn, conversation_id)
    assert [o["memory_id"] for o in reply.outcomes] == [saved["id"]]  # carried over
    assert [m.content for m in store.list_memories(conn)[0]] == ["My dog is called Rex."]


def test_an_edited_statement_replaces_what_the_old_one_saved(services, chat, conn, engine):
    engine.enqueue({"content": "My dog is called Rex.", "tags": []}, "extract")
    first = turn(chat, conn, "My dog is called Rex.")
    rex = one(first, "memory_saved")["memory"]
    conversation_id = one(first, "done")["conversation_id"]
    engine.enqueue({"content": "My dog is called Max.", "tags": []}, "extract")
    events = redo(chat, conn, conversation_id, "edit", "My dog is called Max.")
    assert [m["id"] for m in one(events, "redo")["trashed"]] == [rex["id"]]
    assert one(events, "memory_saved")["memory"]["content"] == "My dog is called Max."
    assert [m.content for m in store.list_memories(conn)[0]] == ["My dog is called Max."]
    assert store.get_deleted_memory(conn, rex["id"]) is not None  # in the trash: undoable
    assert [(m.role, m.content) for m in conversation_messages(
        services, conn, conversation_id)] == [("user", "My dog is called Max."),
                                              ("assistant", "Noted: your dog is called Max.")]


@pytest.mark.parametrize("frame, code", [
    ({"redo": "again", "conversation_id": 1}, "invalid_redo"),
    ({"redo": ["edit"], "conversation_id": 1, "content": "x"}, "invalid_redo"),
    ({"redo": "regenerate"}, "invalid_conversation_id"),
    ({"redo": "edit", "conversation_id": 1}, "empty_content"),
])
def test_a_bad_redo_is_refused(chat, frame, code):
    with pytest.raises(ValidationError) as refused:
        chat.parse_request(frame)
    assert refused.value.code == code


def test_redo_in_an_empty_conversation_changes_nothing(services, chat, conn):
    empty = conversation_store.create_conversation(conn, "empty")
    with pytest.raises(LumaraError) as refused:
        redo(chat, conn, empty.id, "regenerate")
    assert refused.value.code == "nothing_to_redo"
    assert conversation_messages(services, conn, empty.id) == []
