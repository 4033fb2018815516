"""lumara_bench.intent_eval: accuracy, confusion matrix and misses of the chat's message
understanding on labelled messages; a bad file is an error naming file:line."""

import json

import pytest

from lumara_bench import intent_eval
from lumara_web.errors import ValidationError


def write(path, rows):
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


def test_accuracy_matrix_and_misses_are_counted_per_file(tmp_path):
    path = write(tmp_path / "intents.jsonl", [
        {"message": "My dog is called Rex.", "intent": "statement"},
        {"message": "What is my dog called?", "intent": "question"},
        {"message": "Tell me a joke.", "intent": "general"},
        {"message": "Thanks!", "intent": "statement"},  # labelled wrong on purpose: a miss
    ])
    [file] = intent_eval.run([path])["files"]
    assert file["messages"] == 4 and file["accuracy"] == pytest.approx(0.75)
    assert file["confusion"]["statement"] == {"statement": 1, "question": 0, "general": 0,
                                              "small_talk": 1, "forget": 0}
    assert file["misses"] == [{"line": 4, "message": "Thanks!", "intent": "statement",
                               "predicted": "small_talk"}]
    section = intent_eval.markdown({"files": [file]})
    assert "Accuracy 0.750" in section and "'Thanks!' — labelled statement" in section


@pytest.mark.parametrize("line, problem", [
    ('{"message": "hi", "intent": "greeting"}', "intent 'greeting' is not one of"),
    ('{"message": "", "intent": "small_talk"}', "'message' must be a non-empty string"),
    ("not json", "not valid JSON"),
])
def test_a_bad_line_is_named(tmp_path, line, problem):
    path = tmp_path / "intents.jsonl"
    path.write_text('{"message": "hi", "intent": "small_talk"}\n' + line + "\n")
    with pytest.raises(ValidationError, match=f"{path}:2: .*{problem}"):
        intent_eval.run([path])
