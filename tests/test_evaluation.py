"""The retrieval evaluation (evaluation.py) and `bench --eval`: metrics computed by hand,
loader errors that name file:line, seeded distractors, and an end-to-end run on tiny files
written here (CI has no ../shared/eval)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lumara_bench import evaluation
from lumara_bench.bench import write_speed_report
from lumara_web.config import load_settings
from lumara_web.errors import ValidationError

from .fakes import FakeEmbedder

PROJECT_ROOT = Path(__file__).resolve().parent.parent

MEMORIES = [
    {"kind": "memory", "id": "p1", "content": "Our parrot Kiwi eats sunflower seeds.",
     "type": "knowledge"},
    {"kind": "memory", "id": "p2", "content": "I repaint the fence every third summer.",
     "type": "method"},
    {"kind": "memory", "id": "p3", "content": "The kayak trip on the Danube was freezing.",
     "type": "experience"},
]
QUESTIONS = [
    {"kind": "question", "question": "What does Kiwi the parrot eat?", "answers": ["p1"]},
    {"kind": "question", "question": "How often do I repaint the fence?", "answers": ["p2"]},
    {"kind": "question", "question": "How was the kayak trip on the Danube?",
     "answers": ["p3", "p1"]},
]


def write(path: Path, rows: list) -> Path:
    path.write_text("\n".join(row if isinstance(row, str) else json.dumps(row)
                              for row in rows) + "\n")
    return path


# -- metrics ------------------------------------------------------------------------------
def test_recall_and_mrr_by_hand():
    ranked = [["a", "b"], ["x", "a"], ["x", "y", "z", "w", "v", "b"], [], ["q", "c", "d"]]
    answers = [frozenset("a"), frozenset("a"), frozenset("b"), frozenset("c"),
               frozenset({"d", "c"})]
    metrics = evaluation.retrieval_metrics(ranked, answers)
    # First answer at ranks 1, 2, 6 (beyond 5), none, 2 (the first of several answers).
    assert metrics["questions"] == 5
    assert metrics["recall_at_1"] == pytest.approx(1 / 5)
    assert metrics["recall_at_5"] == pytest.approx(3 / 5)
    assert metrics["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 6 + 0 + 1 / 2) / 5)


# -- loading ------------------------------------------------------------------------------
def test_a_set_loads_with_ids_scoped_to_their_file(tmp_path):
    first = write(tmp_path / "retrieval-a.jsonl", [*MEMORIES, "", *QUESTIONS])
    second = write(tmp_path / "retrieval-b.jsonl", [MEMORIES[0], QUESTIONS[0]])
    data = evaluation.load_retrieval_set([first, second])
    assert len(data.memories) == 4 and len(data.questions) == 4
    assert data.questions[2].answers == {f"{first}#p3", f"{first}#p1"}
    assert data.questions[3].answers == {f"{second}#p1"}


@pytest.mark.parametrize("bad_line, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ({"kind": "note"}, "neither 'memory' nor 'question'"),
    ({"kind": "memory", "id": "p9", "content": " ", "type": "knowledge"},
     "'content' must be a non-empty string"),
    ({"kind": "memory", "id": "p9", "content": "x", "type": "fact"}, "type 'fact'"),
    ({"kind": "memory", "id": "p1", "content": "again", "type": "knowledge"},
     "already used at"),
    ({"kind": "question", "question": "Why?", "answers": []}, "non-empty list"),
    ({"kind": "question", "question": "Why?", "answers": ["nope"]}, "'nope' name no memory"),
    ({"kind": "question", "question": 3, "answers": ["p1"]}, "'question' must be"),
])
def test_a_bad_line_is_an_error_naming_file_and_line(tmp_path, bad_line, message):
    path = write(tmp_path / "retrieval.jsonl", [*MEMORIES, bad_line, *QUESTIONS])
    with pytest.raises(ValidationError) as raised:
        evaluation.load_retrieval_set([path])
    assert f"{path}:4:" in raised.value.message
    assert message in raised.value.message


def test_a_file_without_questions_or_unreadable_is_an_error(tmp_path):
    with pytest.raises(ValidationError, match="no questions"):
        evaluation.load_retrieval_set([write(tmp_path / "retrieval.jsonl", MEMORIES)])
    with pytest.raises(ValidationError, match="cannot read"):
        evaluation.load_retrieval_set([tmp_path / "missing.jsonl"])


# -- distractors --------------------------------------------------------------------------
def test_distractors_are_seeded_distinct_and_of_every_type():
    first = evaluation.distractor_memories(2_000, seed=7)
    assert first == evaluation.distractor_memories(2_000, seed=7)
    assert first != evaluation.distractor_memories(2_000, seed=8)
    assert len({content for content, _ in first}) == 2_000
    assert {type for _, type in first} == {"knowledge", "experience", "method"}


def test_distractors_never_repeat_an_evaluation_sentence():
    generated = evaluation.distractor_memories(500, seed=3)
    evaluated = frozenset({generated[10][0].upper(), "  " + generated[20][0]} |
                          {memory["content"] for memory in MEMORIES})
    kept = {content for content, _ in evaluation.distractor_memories(
        500, seed=3, exclude=evaluated)}
    assert len(kept) == 500
    assert generated[10][0] not in kept and generated[20][0] not in kept
    assert not kept & {memory["content"] for memory in MEMORIES}


def test_distractors_name_none_of_the_sets_people():
    """A distractor about a person the set speaks of could answer its questions."""
    spoken_of = ["My brother Tomasz lives in Leeds.", "When is Ines's birthday?",
                 "What does my spouse do?"]
    kept = [content for content, _ in evaluation.distractor_memories(
        3_000, seed=5, spoken_of=spoken_of)]
    assert len(kept) == 3_000
    text = " ".join(kept)
    assert not re.search(r"\bInes\b", text) and "my brother" not in text.lower()
    every = " ".join(content for content, _ in evaluation.distractor_memories(3_000, seed=5))
    assert re.search(r"\bInes\b", every) and "my brother" in every.lower()


def test_ten_thousand_distractors_can_be_made():
    assert len(evaluation.distractor_memories(evaluation.DEFAULT_DISTRACTORS)) == 10_000


# -- running ------------------------------------------------------------------------------
def test_run_reports_every_variant_alone_and_with_distractors(tmp_path):
    path = write(tmp_path / "retrieval.jsonl", [*MEMORIES, *QUESTIONS])
    settings = load_settings({"data_dir": str(tmp_path / "data"),
                              "chat_memory_threshold": 0.2}, environ={})
    result = evaluation.run([path], embedder=FakeEmbedder(), settings=settings,
                            distractors=200)
    assert {row["distractors"] for row in result["results"]} == {0, 200}
    assert len(result["results"]) == 2 * len(evaluation.VARIANTS)
    alone = [row for row in result["results"] if row["distractors"] == 0]
    # Bag-of-words vectors: each question shares most words with its answer only.
    assert all(row["recall_at_1"] == 1.0 and row["mrr"] == 1.0 for row in alone)
    assert {row["variant"] for row in result["no_answer"]} == set(evaluation.VARIANTS)
    assert set(result["latency"]) == set(evaluation.VARIANTS)
    table = evaluation.markdown(result, "tiny")
    assert "| vector only (hybrid_retrieval off) | 200 |" in table


def test_the_section_is_replaced_in_place_and_found_again():
    document = "# Benchmarks\n\n## The promised table\n\n| a |\n"
    section = "## Answer quality\n\nfirst\n"
    once = evaluation.replace_section(document, section)
    assert once == document + "\n" + section
    with_more = once + "\n## Later\n\nkept\n"
    twice = evaluation.replace_section(with_more, "## Answer quality\n\nsecond\n")
    assert "first" not in twice and "second" in twice and twice.endswith("## Later\n\nkept\n")
    assert evaluation.section_of(twice) == "## Answer quality\n\nsecond\n"
    assert evaluation.section_of(document) is None


# -- `python -m lumara_bench --eval` ----------------------------------------------------
def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lumara_bench", "--eval",
                           "--only-eval-dirs", *args],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)


def test_bench_eval_end_to_end_keeps_the_rest_of_the_file(tmp_path):
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    write(eval_dir / "retrieval.jsonl", [*MEMORIES, *QUESTIONS])
    write(eval_dir / "pairs.jsonl", [
        {"a": "Kiwi eats seeds.", "b": "Kiwi, our parrot, eats seeds.", "label": "duplicate"},
        {"a": "The fence is green.", "b": "The fence is red.", "label": "contradiction"}])
    output = tmp_path / "BENCHMARKS.md"
    output.write_text("# Benchmarks\n\n## The promised table\n\nspeed figures\n")
    (tmp_path / "benchmarks.json").write_text(json.dumps({"rows": [{"key": "search"}]}))
    result = bench("--eval-dir", str(eval_dir), "--distractors", "100",
                   "--output", str(output))
    assert result.returncode == 0, result.stderr[-3000:]
    text = output.read_text()
    assert text.startswith("# Benchmarks\n\n## The promised table\n\nspeed figures\n")
    assert "## Answer quality" in text and "### Retrieval:" in text
    assert "| hybrid: RRF, names, relevance score (default) | 100 |" in text
    assert "### Pairs:" in text
    recorded = json.loads((tmp_path / "benchmarks.json").read_text())
    assert recorded["rows"] == [{"key": "search"}]  # the speed figures stay
    figures = recorded["answer_quality"]["retrieval"][str(eval_dir)]
    assert figures["questions"] == 3 and figures["distractors"] == 100


def test_bench_eval_stops_on_a_bad_file_with_its_line(tmp_path):
    write(tmp_path / "retrieval.jsonl", [*MEMORIES, {"kind": "question"}])
    result = bench("--eval-dir", str(tmp_path), "--distractors", "0", "--output", "")
    assert result.returncode != 0
    assert f"{tmp_path / 'retrieval.jsonl'}:4:" in result.stderr


def test_a_speed_run_keeps_the_answer_quality_section_and_figures(tmp_path):
    output = tmp_path / "BENCHMARKS.md"
    output.write_text("# Benchmarks\n\nold speed\n\n## Answer quality\n\nrecall table\n")
    (tmp_path / "benchmarks.json").write_text(json.dumps(
        {"rows": [{"key": "old"}], "answer_quality": {"retrieval": {"x": 1}}}))
    write_speed_report(output, "# Benchmarks\n\nnew speed\n", {"rows": [{"key": "new"}]})
    assert output.read_text() == ("# Benchmarks\n\nnew speed\n\n"
                                  "## Answer quality\n\nrecall table\n")
    assert json.loads((tmp_path / "benchmarks.json").read_text()) == {
        "rows": [{"key": "new"}], "answer_quality": {"retrieval": {"x": 1}}}
