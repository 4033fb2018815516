"""How well each pair classifier tells duplicates, contradictions, related and unrelated
pairs apart, on labelled pairs files (JSON lines: {"a": …, "b": …, "label": …}).

`run` evaluates every variant of lumara_web.memory.pair_judge on every file: precision, recall
and F1 for duplicate and for contradiction, accuracy over the four labels, and a 4×4
confusion matrix (rows: the file's label; columns: the classifier's). `markdown` renders
the result as tables for docs/BENCHMARKS.md. The benchmark (`--eval`) calls both.

The model variants use the chat's ContradictionJudge: `model` asks it about every pair (its
yes/no names no duplicate: a "no" counts as related, so only its contradiction figures
mean something); `cues+cosine+model` asks it where the chat does (pair_judge.reconsider)."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from lumara_web.errors import ValidationError
from lumara_web.memory import pair_judge
from lumara_web.memory.pair_judge import LABELS, PairVerdict

from .eval_files import json_objects

DEFAULT_VARIANT = "cues+cosine"
# Evaluated in this order; the model variants need an engine.
VARIANTS = ("cosine", "cues", "model", "cues+cosine", "cues+cosine+model")
MODEL_VARIANTS = frozenset({"model", "cues+cosine+model"})
SCORED_LABELS = ("duplicate", "contradiction")


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    label: str
    line: int


def load_pairs(path: pathlib.Path) -> list[Pair]:
    """The labelled pairs of a JSON-lines file; a bad line is an error naming file:line."""
    pairs = []
    for where, number, item in json_objects(path, "pairs file", _bad):
        for key in ("a", "b"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise _bad(f"{where}: '{key}' must be a non-empty string.")
        if item.get("label") not in LABELS:
            raise _bad(f"{where}: label {item.get('label')!r} is not one of "
                       f"{', '.join(LABELS)}.")
        pairs.append(Pair(item["a"], item["b"], item["label"], number))
    if not pairs:
        raise _bad(f"{path}: holds no pairs.")
    return pairs


def _bad(message: str) -> ValidationError:
    return ValidationError(message, code="invalid_pairs_file")


# -- metrics -------------------------------------------------------------------------------
def confusion(gold: list[str], predicted: list[str],
              labels: tuple[str, ...] = LABELS) -> dict[str, dict[str, int]]:
    """matrix[gold label][predicted label] = count, every label in both."""
    matrix = {row: {column: 0 for column in labels} for row in labels}
    for truth, guess in zip(gold, predicted, strict=True):
        matrix[truth][guess] += 1
    return matrix


def label_scores(matrix: dict[str, dict[str, int]], label: str) -> dict:
    """Precision, recall and F1 of one label (0.0 where undefined: nothing predicted or
    nothing to find), with its support (pairs of that label)."""
    true_positive = matrix[label][label]
    predicted = sum(matrix[row][label] for row in LABELS)
    support = sum(matrix[label].values())
    precision = true_positive / predicted if predicted else 0.0
    recall = true_positive / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": support,
            "predicted": predicted}


def accuracy(matrix: dict[str, dict[str, int]]) -> float:
    total = sum(sum(row.values()) for row in matrix.values())
    return sum(matrix[label][label] for label in matrix) / total if total else 0.0


# -- running -------------------------------------------------------------------------------
def _embed(embeddings: Any, texts: list[str]) -> np.ndarray:
    """Unit vectors from an EmbeddingService (embed_many) or an Embedder (embed)."""
    many = getattr(embeddings, "embed_many", None)
    vectors = np.asarray(many(texts) if many else embeddings.embed(texts), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _variants(engine: Any) -> dict[str, Callable[[Pair, float], PairVerdict] | None]:
    judge = pair_judge.ContradictionJudge(engine)  # the chat's own judge
    model_labels: dict[tuple[str, str], PairVerdict] = {}

    def model(pair: Pair, _similarity: float) -> PairVerdict:
        key = (pair.a, pair.b)
        if key not in model_labels:  # both model variants ask about the same pairs
            model_labels[key] = judge.judge(pair.a, pair.b)
        return model_labels[key]

    def cues_cosine_model(pair: Pair, similarity: float) -> PairVerdict:
        return pair_judge.classify_with_model(
            pair.a, pair.b, similarity, lambda a, b: model(pair, similarity))

    return {
        "cosine": lambda pair, similarity: pair_judge.classify_by_cosine(similarity),
        "cues": lambda pair, similarity: pair_judge.classify_by_cues(pair.a, pair.b),
        "model": model if engine is not None else None,
        "cues+cosine": lambda pair, similarity: pair_judge.classify(pair.a, pair.b,
                                                                    similarity),
        "cues+cosine+model": cues_cosine_model if engine is not None else None,
    }


def run(paths: list[pathlib.Path], *, embeddings: Any, engine: Any) -> dict:
    """Every variant on every pairs file. `engine` None: the model variants are reported
    as skipped. All files are loaded (and checked) before anything is computed."""
    loaded = [(pathlib.Path(path), load_pairs(path)) for path in paths]
    files = []
    for path, pairs in loaded:
        vectors_a = _embed(embeddings, [pair.a for pair in pairs])
        vectors_b = _embed(embeddings, [pair.b for pair in pairs])
        similarities = [float(s) for s in np.sum(vectors_a * vectors_b, axis=1)]
        gold = [pair.label for pair in pairs]
        results = {}
        for name, classify in _variants(engine).items():
            if classify is None:
                results[name] = {"skipped": "no chat engine"}
                continue
            verdicts = [classify(pair, similarity)
                        for pair, similarity in zip(pairs, similarities)]
            predicted = [verdict.label for verdict in verdicts]
            matrix = confusion(gold, predicted)
            results[name] = {
                **{label: label_scores(matrix, label) for label in SCORED_LABELS},
                "accuracy": accuracy(matrix), "confusion": matrix,
                "misses": [{"line": pair.line, "a": pair.a, "b": pair.b, "label": pair.label,
                            "predicted": verdict.label, "similarity": round(similarity, 3),
                            "explanation": verdict.explanation}
                           for pair, similarity, verdict in zip(pairs, similarities, verdicts)
                           if verdict.label != pair.label]}
        files.append({"path": str(path), "pairs": len(pairs),
                      "labels": {label: gold.count(label) for label in LABELS},
                      "variants": results})
    return {"default": DEFAULT_VARIANT, "variants": list(VARIANTS), "files": files}


# -- rendering -----------------------------------------------------------------------------
def markdown(result: dict) -> str:
    """Per file: a table of every variant's scores, then the default's confusion matrix
    and its misses."""
    lines: list[str] = []
    for file in result["files"]:
        counts = ", ".join(f"{count} {label}" for label, count in file["labels"].items())
        lines += [f"### Pairs: `{file['path']}` ({file['pairs']} pairs: {counts})", "",
                  "| variant | dup P | dup R | dup F1 | contra P | contra R | contra F1 "
                  "| accuracy |",
                  "|---|---|---|---|---|---|---|---|"]
        for name in result["variants"]:
            scores = file["variants"][name]
            marker = " (default)" if name == result["default"] else ""
            if "skipped" in scores:
                lines.append(f"| {name}{marker} | skipped: {scores['skipped']} |"
                             + " |" * 6)
                continue
            cells = [f"{scores[label][measure]:.2f}" for label in SCORED_LABELS
                     for measure in ("precision", "recall", "f1")]
            lines.append(f"| {name}{marker} | " + " | ".join(cells)
                         + f" | {scores['accuracy']:.2f} |")
        default = file["variants"][result["default"]]
        lines += ["", f"Confusion matrix of {result['default']} (rows: labelled, "
                  "columns: predicted):", "",
                  "| labelled \\ predicted | " + " | ".join(LABELS) + " |",
                  "|---|" + "---|" * len(LABELS)]
        for row in LABELS:
            lines.append(f"| {row} | " + " | ".join(str(default["confusion"][row][column])
                                                    for column in LABELS) + " |")
        if default["misses"]:
            lines += ["", f"Misses of {result['default']}:", ""]
            lines += [f"- line {miss['line']}: {miss['label']} → {miss['predicted']} "
                      f"(cosine {miss['similarity']:.2f}): “{miss['a']}” / “{miss['b']}”"
                      for miss in default["misses"]]
        lines.append("")
    return "\n".join(lines)
