"""lumara_bench.pair_eval: metrics checked by hand, the loader's errors, run() and markdown()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lumara_bench import pair_eval
from lumara_web.errors import ValidationError

from .fakes import FakeEmbedder

DEV_PAIRS = Path(__file__).parent / "data" / "pairs_dev.jsonl"
RENT = "The monthly rent for our flat in the old town is 900 euros."


def write_pairs(path: Path, *rows) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" if isinstance(row, dict) else row + "\n"
                            for row in rows), encoding="utf-8")
    return path


# -- metrics -------------------------------------------------------------------------------
def test_confusion_matrix_and_scores_by_hand():
    gold = ["duplicate", "duplicate", "duplicate", "contradiction", "contradiction",
            "related", "unrelated"]
    guess = ["duplicate", "duplicate", "related", "duplicate", "contradiction",
             "contradiction", "unrelated"]
    matrix = pair_eval.confusion(gold, guess)
    assert matrix["duplicate"] == {"duplicate": 2, "contradiction": 0, "related": 1,
                                   "unrelated": 0}
    assert matrix["contradiction"] == {"duplicate": 1, "contradiction": 1, "related": 0,
                                       "unrelated": 0}
    assert matrix["related"]["contradiction"] == 1 and matrix["unrelated"]["unrelated"] == 1
    # duplicate: 2 right of 3 predicted, 2 found of 3.
    duplicate = pair_eval.label_scores(matrix, "duplicate")
    assert duplicate["precision"] == pytest.approx(2 / 3)
    assert duplicate["recall"] == pytest.approx(2 / 3)
    assert duplicate["f1"] == pytest.approx(2 / 3)
    assert duplicate["support"] == 3
    # contradiction: 1 right of 2 predicted, 1 found of 2.
    contradiction = pair_eval.label_scores(matrix, "contradiction")
    assert (contradiction["precision"], contradiction["recall"], contradiction["f1"]) == \
        pytest.approx((0.5, 0.5, 0.5))
    assert pair_eval.accuracy(matrix) == pytest.approx(4 / 7)


def test_a_label_never_predicted_scores_zero_not_an_error():
    matrix = pair_eval.confusion(["contradiction"], ["related"])
    assert pair_eval.label_scores(matrix, "contradiction") == {
        "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "predicted": 0}


# -- loading -------------------------------------------------------------------------------
@pytest.mark.parametrize("line, message", [
    ('{"a": "x", "b": "y"', "not valid JSON"),
    ('["x", "y", "duplicate"]', "expected a JSON object"),
    ('{"a": "", "b": "y", "label": "duplicate"}', "'a' must be a non-empty string"),
    ('{"a": "x", "b": 3, "label": "duplicate"}', "'b' must be a non-empty string"),
    ('{"a": "x", "b": "y", "label": "same"}', "label 'same' is not one of"),
    ('{"a": "x", "b": "y"}', "label None is not one of"),
])
def test_a_bad_line_is_an_error_naming_the_file_and_line(tmp_path, line, message):
    path = write_pairs(tmp_path / "pairs.jsonl",
                       {"a": "x", "b": "y", "label": "related"}, "", line)
    with pytest.raises(ValidationError) as raised:
        pair_eval.load_pairs(path)
    assert raised.value.code == "invalid_pairs_file"
    assert f"{path}:3: " in raised.value.message and message in raised.value.message


def test_an_empty_or_missing_file_is_an_error(tmp_path):
    with pytest.raises(ValidationError, match="holds no pairs"):
        pair_eval.load_pairs(write_pairs(tmp_path / "empty.jsonl", ""))
    with pytest.raises(ValidationError, match="cannot read"):
        pair_eval.load_pairs(tmp_path / "missing.jsonl")


def test_a_bad_file_stops_the_run_before_anything_is_embedded(tmp_path):
    good = write_pairs(tmp_path / "good.jsonl", {"a": "x", "b": "y", "label": "related"})
    bad = write_pairs(tmp_path / "bad.jsonl", "not json")
    embedder = FakeEmbedder()
    with pytest.raises(ValidationError, match="bad.jsonl:1"):
        pair_eval.run([good, bad], embeddings=embedder, engine=None)
    assert embedder.calls == []


def test_the_development_pairs_load_with_every_label():
    pairs = pair_eval.load_pairs(DEV_PAIRS)
    assert len(pairs) >= 80
    assert {pair.label for pair in pairs} == set(pair_eval.LABELS)


# -- running -------------------------------------------------------------------------------
def test_run_without_an_engine_skips_the_model_variants(tmp_path):
    path = write_pairs(
        tmp_path / "tiny.jsonl",
        {"a": RENT, "b": RENT.replace("900", "950"), "label": "contradiction"},
        {"a": RENT, "b": RENT, "label": "duplicate"},
        {"a": RENT, "b": "Owls hunt at dusk.", "label": "unrelated"})

    result = pair_eval.run([path], embeddings=FakeEmbedder(), engine=None)

    assert result["default"] == "cues+cosine"
    [file] = result["files"]
    assert file["pairs"] == 3 and file["labels"]["related"] == 0
    variants = file["variants"]
    assert list(variants) == list(pair_eval.VARIANTS)
    assert variants["model"] == {"skipped": "no chat engine"}
    assert variants["cues+cosine+model"] == {"skipped": "no chat engine"}
    default = variants["cues+cosine"]
    assert default["contradiction"]["f1"] == 1.0 and default["duplicate"]["precision"] == 1.0
    assert default["accuracy"] == 1.0 and default["misses"] == []
    # Cosine bands alone call the swapped value a duplicate (bag-of-words cosine ≥ 0.85).
    cosine = variants["cosine"]
    assert cosine["confusion"]["contradiction"]["duplicate"] == 1
    assert cosine["misses"][0]["line"] == 1

    text = pair_eval.markdown(result)
    assert "| cues+cosine (default) | 1.00 | 1.00 | 1.00 | 1.00 | 1.00 | 1.00 | 1.00 |" in text
    assert "| model | skipped: no chat engine |" in text
    assert "| contradiction | 0 | 1 | 0 | 0 |" in text


def test_the_default_meets_the_aims_on_the_development_pairs(real_embedder):
    """Duplicate precision ≥ 0.9 and contradiction F1 ≥ 0.8, well above cosine bands."""
    result = pair_eval.run([DEV_PAIRS], embeddings=real_embedder, engine=None)
    variants = result["files"][0]["variants"]
    default, cosine = variants["cues+cosine"], variants["cosine"]
    assert default["duplicate"]["precision"] >= 0.9
    assert default["contradiction"]["f1"] >= 0.8
    assert default["contradiction"]["f1"] > cosine["contradiction"]["f1"] + 0.2
    # The hard rule, on every pair: no contradiction labelled a duplicate.
    assert default["confusion"]["contradiction"]["duplicate"] == 0
