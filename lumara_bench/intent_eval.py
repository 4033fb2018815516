"""How well the chat tells what a message is (chat/understanding.py), on labelled messages:
JSON lines {"message": …, "intent": …}, intent ∈ statement, question, general, small_talk,
forget. Rules, no model: instant, and the same on every machine."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

from lumara_web.chat.understanding import INTENTS, understand
from lumara_web.errors import ValidationError

from .eval_files import json_objects
from .pair_eval import accuracy, confusion


@dataclass(frozen=True)
class LabelledMessage:
    message: str
    intent: str
    line: int


def load_messages(path: pathlib.Path) -> list[LabelledMessage]:
    """The labelled messages of a JSON-lines file; a bad line is an error naming file:line."""
    messages = []
    for where, number, item in json_objects(path, "intents file", _bad):
        if not isinstance(item.get("message"), str) or not item["message"].strip():
            raise _bad(f"{where}: 'message' must be a non-empty string.")
        if item.get("intent") not in INTENTS:
            raise _bad(f"{where}: intent {item.get('intent')!r} is not one of "
                       f"{', '.join(INTENTS)}.")
        messages.append(LabelledMessage(item["message"], item["intent"], number))
    if not messages:
        raise _bad(f"{path}: holds no messages.")
    return messages


def _bad(message: str) -> ValidationError:
    return ValidationError(message, code="invalid_intents_file")


def run(paths: list[pathlib.Path]) -> dict:
    """Accuracy, confusion matrix and misses per file (every file checked before any runs)."""
    loaded = [(pathlib.Path(path), load_messages(path)) for path in paths]
    files = []
    for path, messages in loaded:
        predicted = [understand(item.message).intent for item in messages]
        matrix = confusion([item.intent for item in messages], predicted, INTENTS)
        files.append({
            "path": str(path), "messages": len(messages), "accuracy": accuracy(matrix),
            "confusion": matrix,
            "misses": [{"line": item.line, "message": item.message, "intent": item.intent,
                        "predicted": guess}
                       for item, guess in zip(messages, predicted) if guess != item.intent]})
    return {"files": files}


def markdown(result: dict) -> str:
    lines: list[str] = []
    for file in result["files"]:
        lines += [f"### Intents: `{file['path']}` ({file['messages']} messages)", "",
                  f"Accuracy {file['accuracy']:.3f}. Confusion matrix (rows: labelled, "
                  "columns: predicted):", "",
                  "| labelled \\ predicted | " + " | ".join(INTENTS) + " |",
                  "|---|" + "---|" * len(INTENTS)]
        for gold in INTENTS:
            lines.append(f"| {gold} | "
                         + " | ".join(str(file["confusion"][gold][guess]) for guess in INTENTS)
                         + " |")
        lines += ["", "Misses:" if file["misses"] else "Misses: none.", ""]
        lines += [f"- line {miss['line']}: {miss['message']!r} — labelled {miss['intent']}, "
                  f"read as {miss['predicted']}" for miss in file["misses"]]
        lines.append("")
    return "\n".join(lines)
