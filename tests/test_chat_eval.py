"""lumara_bench.chat_eval: scenario files run through the real chat turn on the real services,
with FakeEmbedder and a FakeEngine whose replies are scripted, so every figure is seen both
met and missed; bad lines name file:line; a crash names the product's line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lumara_bench import chat_eval, evaluation
from lumara_web.chat import prompts
from lumara_web.config import load_settings
from lumara_web.errors import ValidationError

from .fakes import FakeEmbedder, FakeEngine

MEMORIES = [
    {"kind": "memory", "id": "m1", "content": "My sister Ana lives in Lisbon.",
     "type": "knowledge"},
    {"kind": "memory", "id": "m2", "content": "My shoe size is 43.", "type": "knowledge"},
    {"kind": "memory", "id": "m3", "content": "Our dog is called Juno.", "type": "knowledge"},
]
ANA = "Where does my sister Ana live?"
# Line numbers follow MEMORIES (lines 1-3); each kind twice: one met, one missed.
ROWS = [
    {"kind": "question", "q": ANA, "gold": ["m1"], "answer_any": ["lisbon"]},  # 4
    # Mislabelled: the chat answers from m1, and its invented "Porto" gives way to m1.
    {"kind": "question", "q": ANA, "gold": ["m2"], "answer_any": ["porto"]},  # 5
    {"kind": "unanswerable", "q": "Which cat food do we buy?", "must_not": ["juno"]},  # 6
    {"kind": "unanswerable", "q": "Where does my sister Ana work?",
     "must_not": ["lisbon"]},  # 7
    {"kind": "followup", "turns": ["Tell me about my sister Ana.", ANA], "gold": ["m1"],
     "answer_any": ["lisbon"]},  # 8
    {"kind": "followup", "turns": ["Tell me about my sister Ana.", ANA], "gold": ["m1"],
     "answer_any": ["porto"]},  # 9
    {"kind": "general", "q": "What is the capital of France?", "answer_any": ["paris"]},  # 10
    {"kind": "general", "q": "What is the capital of Spain?", "answer_any": ["madrid"]},  # 11
    {"kind": "statement", "say": "I always back up my laptop every Sunday night.",
     "type": "method", "must_have": ["laptop"]},  # 12
    {"kind": "statement", "say": "My brother Tom works as a nurse in Leeds.",
     "type": "experience", "must_have": ["tom", "ward"]},  # 13
    {"kind": "contradiction", "say": "My shoe size is 45.", "conflicts": "m2"},  # 14
    {"kind": "contradiction", "say": "My sister Ana has a red bike.", "conflicts": "m2"},  # 15
    {"kind": "addition", "say": "My sister Ana also plays the cello.", "related": "m1"},  # 16
    {"kind": "addition", "say": "Our dog is called Nala.", "related": "m3"},  # 17
]
# The model's answers, in the order the rows ask for them (line 6 gets the no-memory reply).
CHAT_REPLIES = ["Your sister Ana lives in Lisbon.", "She lives in Porto.",  # 4, 5
                "She works in Lisbon.",  # 7
                "Ana is your sister.", "She lives in Lisbon.",  # 8
                "Ana is your sister.", "She lives in Porto.",  # 9
                "Paris.", "Barcelona."]  # 10, 11


def write(path: Path, rows: list) -> Path:
    path.write_text("\n".join(row if isinstance(row, str) else json.dumps(row)
                              for row in rows) + "\n")
    return path


def settings(tmp_path: Path) -> dict:
    return load_settings({"data_dir": str(tmp_path / "data")}, environ={})


def scripted_engine() -> FakeEngine:
    engine = FakeEngine()
    for reply in CHAT_REPLIES:
        engine.enqueue(reply)
    for row in ROWS:  # each statement's memory, in its own words
        if "say" in row:
            engine.enqueue({"content": row["say"], "tags": ["life", "notes"]}, "extract")
    return engine


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("chat-eval")
    path = write(tmp_path / "chat.jsonl", [*MEMORIES, *ROWS])
    return chat_eval.run([path], components={"embedder": FakeEmbedder(),
                                             "engine": scripted_engine()},
                         settings=settings(tmp_path))


def test_every_figure_is_met_once_and_missed_once(result):
    [file] = result["files"]
    assert file["rows"] == len(ROWS) and file["memories"] == 3 and not file["crashes"]
    shares = {key: (value["count"], value["n"]) for key, value in file["figures"].items()}
    assert shares == {
        "answer_correctness": (1, 2), "receipt_recall": (1, 2), "honest_refusal": (1, 2),
        "followup_correctness": (1, 2), "followup_receipt_recall": (2, 2),
        "general_correctness": (1, 2),
        # The chat keeps what was said here: the invented word is caught in the next test.
        "extraction_faithfulness": (2, 2), "extraction_completeness": (1, 2),
        "extraction_type_accuracy": (1, 2), "contradictions_flagged": (1, 2),
        "additions_wrongly_flagged": (1, 2)}
    missed = {miss["line"]: miss["failed"] for miss in file["misses"]}
    assert missed == {5: ["answer", "receipt"], 7: ["honest"], 9: ["answer"], 11: ["answer"],
                      13: ["complete", "type"], 15: ["flagged"], 17: ["not_flagged"]}


def test_the_misses_say_what_was_said_and_what_happened(result):
    section = chat_eval.markdown(result)
    assert "| Answer correctness (the answer holds one of answer_any) | 0.50 | 1 of 2 |" in section
    lines = {line.split(" ")[2]: line for line in section.splitlines()
             if line.startswith("- line ")}
    assert ("“Where does my sister Ana live?” — answer “Here is what I remember: your sister "
            "Ana lives in Lisbon.”; replacing the model's “She lives in Porto.”; receipt [m1]"
            in lines["5"])
    assert "“She works in Lisbon.”" in lines["7"]
    assert "“Tell me about my sister Ana.” → “Where does my sister Ana live?”" in lines["9"]
    assert "answered by the model" in lines["11"]
    assert "saved knowledge “My brother Tom works as a nurse in Leeds.”" in lines["13"]
    assert "contradiction against m3" in lines["17"]


def judged(row: dict, events: list[dict], line: int = 9) -> dict:
    """judge_row on a turn made of `events`; file ids m1–m3 are stored ids 1–3."""
    fields = {name: row[name] for name in chat_eval.FIELDS[row["kind"]]}
    ids = {"m1": 1, "m2": 2, "m3": 3}
    return chat_eval.judge_row(chat_eval.Row(row["kind"], line, fields),
                               chat_eval.Turn(events), ids, {v: k for k, v in ids.items()})


def saved(content: str, type: str = "knowledge") -> dict:
    return {"type": "memory_saved", "memory": {"id": 7, "content": content, "type": type},
            "confidence": 0.9}


def test_a_memory_with_an_invented_word_is_caught():
    row = {"kind": "statement", "say": "My aunt Rosa lives in Bilbao.", "type": "knowledge",
           "must_have": ["rosa"]}
    faithful = judged(row, [saved("Your aunt Rosa lived in Bilbao.")])  # person, inflection
    assert faithful["checks"] == {"faithful": True, "complete": True, "type": True}
    invented = judged(row, [{"type": "memory_suggested", "reasons": [],
                             "suggestion": {"id": 2, "content": "My aunt Rosa lives in "
                                            "Bilbao, Spain.", "type": "method"}}])
    assert invented["checks"] == {"faithful": False, "complete": True, "type": False}
    assert "suggested method" in invented["happened"] and "invented: spain" \
        in invented["happened"]
    nothing = judged(row, [])
    assert nothing["checks"] == {"faithful": None, "complete": False, "type": False}
    assert "no memory saved or suggested" in nothing["happened"]


def test_no_memory_is_the_products_own_wording():
    assert chat_eval.says_no_memory(prompts.NO_MEMORY_REPLY)
    assert chat_eval.says_no_memory(prompts.forget_reply("my cat", 0))
    assert chat_eval.says_no_memory("I don’t have any memories about your cat.")
    assert not chat_eval.says_no_memory("Your cat is called Juno.")
    assert not chat_eval.says_no_memory("Your cat's collar has no memory chip.")
    assert not chat_eval.says_no_memory("I'm not sure.")
    row = {"kind": "unanswerable", "q": "What is my car's plate?", "must_not": ["4"]}
    template = [{"type": "token", "text": prompts.NO_MEMORY_REPLY}]
    assert judged(row, template)["checks"] == {"honest": True}
    leaked = [{"type": "token", "text": "I don't have a memory of it, maybe 4471?"}]
    assert judged(row, leaked)["checks"] == {"honest": False}


def test_a_crash_names_the_products_line_and_the_run_goes_on(tmp_path, monkeypatch):
    from lumara_web.chat import service

    def broken(message):
        raise KeyError("intent")

    monkeypatch.setattr(service, "understand", broken)
    path = write(tmp_path / "chat.jsonl", [*MEMORIES, ROWS[0], ROWS[6]])
    [file] = chat_eval.run([path], components={"embedder": FakeEmbedder(),
                                               "engine": FakeEngine()},
                           settings=settings(tmp_path))["files"]
    assert [crash["line"] for crash in file["crashes"]] == [4, 5]
    assert file["crashes"][0]["at"].startswith("lumara_web/chat/service.py:")
    assert "KeyError" in file["crashes"][0]["at"]
    assert file["figures"]["answer_correctness"] == {"share": 0.0, "count": 0, "n": 1}
    assert "The product crashed:" in chat_eval.markdown({"files": [file]})


@pytest.mark.parametrize("bad_line, message", [
    ("{not json", "not valid JSON"),
    ({"kind": "quiz", "q": "?"}, "kind 'quiz' is not one of"),
    ({"kind": "question", "q": "Why?", "gold": [], "answer_any": ["x"]},
     "'gold' must be a non-empty list"),
    ({"kind": "question", "q": "Why?", "gold": ["m9"], "answer_any": ["x"]},
     "'gold' names no memory of this file: 'm9'"),
    ({"kind": "unanswerable", "q": " ", "must_not": []}, "'q' must be a non-empty string"),
    ({"kind": "statement", "say": "I ski.", "type": "fact", "must_have": ["ski"]},
     "'type' 'fact' is not one of"),
    ({"kind": "contradiction", "say": "No.", "conflicts": "m7"}, "'conflicts' names no memory"),
    ({"kind": "memory", "id": "m1", "content": "Again.", "type": "knowledge"},
     "already used at"),
])
def test_a_bad_line_is_an_error_naming_file_and_line(tmp_path, bad_line, message):
    path = write(tmp_path / "chat.jsonl", [*MEMORIES, bad_line, ROWS[0]])
    with pytest.raises(ValidationError) as raised:
        chat_eval.load_scenario(path)
    assert f"{path}:4:" in raised.value.message and message in raised.value.message


def test_a_bad_chat_file_stops_the_evaluation_before_anything_runs(tmp_path):
    write(tmp_path / "intents.jsonl", [{"message": "Hi!", "intent": "small_talk"}])
    write(tmp_path / "chat.jsonl", [*MEMORIES, ROWS[0], {"kind": "general", "q": "?"}])

    def no_model():
        raise AssertionError("nothing may run before every chat file is checked")

    with pytest.raises(ValidationError, match=f"{tmp_path / 'chat.jsonl'}:5:"):
        evaluation.evaluate_dirs([tmp_path], embedder=FakeEmbedder(),
                                 settings=settings(tmp_path), distractors=0,
                                 engine_factory=no_model, log=lambda line: None)


def test_evaluate_dirs_adds_the_chat_or_says_why_it_could_not(tmp_path):
    write(tmp_path / "chat.jsonl", [*MEMORIES, ROWS[0], ROWS[6]])
    section, figures = evaluation.evaluate_dirs(
        [tmp_path], embedder=FakeEmbedder(), settings=settings(tmp_path), distractors=0,
        engine_factory=scripted_engine, log=lambda line: None)
    [file] = figures["chat"][str(tmp_path)]["files"]
    assert file["figures"]["answer_correctness"]["count"] == 1
    assert file["figures"]["general_correctness"]["count"] == 0  # "She lives in Porto."
    assert f"### Chat: `{tmp_path / 'chat.jsonl'}` (2 conversations" in section

    def no_model():
        raise RuntimeError("no weights here")

    section, figures = evaluation.evaluate_dirs(
        [tmp_path], embedder=FakeEmbedder(), settings=settings(tmp_path), distractors=0,
        engine_factory=no_model, log=lambda line: None)
    assert figures["chat"][str(tmp_path)] == {"unavailable": "RuntimeError: no weights here"}
    assert "The chat evaluation is unavailable: RuntimeError: no weights here." in section
