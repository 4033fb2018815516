"""The chat, measured end to end on scenario files (chat*.jsonl; the format is in
../shared/eval/README.md). Each file gets a fresh data folder and the real services
(lumara_web.services.build_services, with the models given): its memories are stored through
the memory service as the API stores them, then every other row is a fresh conversation run
through ChatService.turn, the generator the websocket session consumes. Rows run in file order,
so what a statement saved stays for the rows after it, as in the chat.

Figures per file, each over the rows it judges (n):
- answer correctness: question rows whose answer holds one of answer_any (case-insensitive);
- receipt recall: question rows whose receipt (the `memories` event) holds one of gold;
- honest refusals: unanswerable rows answered by saying there is no memory (says_no_memory)
  and holding none of must_not;
- follow-up correctness: followup rows whose last answer holds one of answer_any (and the
  follow-up receipt recall: its receipt holds one of gold);
- general-answer correctness: general rows the model answered with one of answer_any;
- extraction, on statement rows: faithfulness (of the memories saved or suggested, the share
  with no invented content word: invented_words), completeness (a memory holding every
  must_have; no memory is a miss) and type accuracy (a memory of the row's type);
- contradictions flagged: contradiction rows with a `contradiction` event against the memory
  named; additions wrongly flagged: addition rows with one against the related memory (lower
  is better).
"""

from __future__ import annotations

import re
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from lumara_web.chat import prompts
from lumara_web.config import MEMORY_TYPES
from lumara_web.errors import LumaraError, ValidationError
from lumara_web.memory import validation
from lumara_web.services import Services, build_services
from lumara_web.text import STOP_WORDS, content_words, stem

from .eval_files import json_objects

# Loading both models from scratch takes seconds; a first ONNX export, about ten.
MODEL_WAIT_SECONDS = 180
# Longest answer quoted in a miss.
QUOTE_CHARS = 200

# What each kind of row holds: field → how it is checked (see _check_field).
FIELDS: dict[str, dict[str, str]] = {
    "memory": {"id": "text", "content": "text", "type": "type"},
    "question": {"q": "text", "gold": "ids", "answer_any": "strings"},
    "unanswerable": {"q": "text", "must_not": "strings or none"},
    "followup": {"turns": "strings", "gold": "ids", "answer_any": "strings"},
    "general": {"q": "text", "answer_any": "strings"},
    "statement": {"say": "text", "type": "type", "must_have": "strings"},
    "contradiction": {"say": "text", "conflicts": "id"},
    "addition": {"say": "text", "related": "id"},
}


@dataclass(frozen=True)
class Figure:
    key: str  # in benchmarks.json
    label: str  # in the table
    kind: str  # the rows it judges
    check: str  # the row check it counts
    share_of_failures: bool = False  # the figure counts failed checks (lower is better)


FIGURES = (
    Figure("answer_correctness", "Answer correctness (the answer holds one of answer_any)",
           "question", "answer"),
    Figure("receipt_recall", "Receipt recall (the receipt holds one of gold)", "question",
           "receipt"),
    Figure("honest_refusal", "Honest refusals (says it has no memory, none of must_not)",
           "unanswerable", "honest"),
    Figure("followup_correctness", "Follow-up correctness (the last answer holds one of "
           "answer_any)", "followup", "answer"),
    Figure("followup_receipt_recall", "Follow-up receipt recall (the last receipt holds one "
           "of gold)", "followup", "receipt"),
    Figure("general_correctness", "General-answer correctness (a model answer holding one "
           "of answer_any)", "general", "answer"),
    Figure("extraction_faithfulness", "Extraction faithfulness (memories made with no "
           "invented content word)", "statement", "faithful"),
    Figure("extraction_completeness", "Extraction completeness (a memory holding every "
           "must_have)", "statement", "complete"),
    Figure("extraction_type_accuracy", "Extraction type accuracy (a memory of the row's "
           "type)", "statement", "type"),
    Figure("contradictions_flagged", "Contradictions flagged (against the memory named)",
           "contradiction", "flagged"),
    Figure("additions_wrongly_flagged", "Additions wrongly flagged (lower is better)",
           "addition", "not_flagged", share_of_failures=True),
)


# -- the file ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    kind: str
    line: int
    fields: dict  # the row's checked fields (FIELDS[kind])

    @property
    def said(self) -> list[str]:
        """The messages the row sends, in order."""
        if self.kind == "followup":
            return list(self.fields["turns"])
        return [self.fields.get("q") or self.fields["say"]]


@dataclass(frozen=True)
class Scenario:
    path: Path
    memories: list[Row]
    rows: list[Row]  # everything but the memories, in file order


def _bad(message: str) -> ValidationError:
    return ValidationError(message, code="invalid_chat_file")


def load_scenario(path: Path) -> Scenario:
    """The memories and rows of one chat file; a bad line is an error naming file:line."""
    path = Path(path)
    memories: list[Row] = []
    rows: list[Row] = []
    defined: dict[str, str] = {}  # memory id → where
    for where, number, item in json_objects(path, "chat file", _bad):
        kind = item.get("kind")
        if kind not in FIELDS:
            raise _bad(f"{where}: kind {kind!r} is not one of {', '.join(FIELDS)}.")
        row = Row(kind, number, {name: _check_field(item, name, rule, where)
                                 for name, rule in FIELDS[kind].items()})
        if kind == "memory":
            memory_id = row.fields["id"]
            if memory_id in defined:
                raise _bad(f"{where}: memory id {memory_id!r} is already used at "
                           f"{defined[memory_id]}; ids must be unique in a file.")
            defined[memory_id] = where
            memories.append(row)
        else:
            rows.append(row)
    for row in rows:  # memories may come after the rows naming them: all are stored first
        for name, rule in FIELDS[row.kind].items():
            named = row.fields[name] if rule == "ids" else [row.fields[name]] \
                if rule == "id" else []
            unknown = [memory_id for memory_id in named if memory_id not in defined]
            if unknown:
                raise _bad(f"{path}:{row.line}: '{name}' names no memory of this file: "
                           f"{', '.join(map(repr, unknown))}.")
    if not rows:
        raise _bad(f"{path}: holds no rows to run (only memories, or nothing).")
    return Scenario(path, memories, rows)


def _check_field(item: dict, name: str, rule: str, where: str) -> Any:
    value = item.get(name)
    if rule in ("text", "id"):
        if not isinstance(value, str) or not value.strip():
            raise _bad(f"{where}: '{name}' must be a non-empty string.")
    elif rule == "type":
        if value not in MEMORY_TYPES:
            raise _bad(f"{where}: '{name}' {value!r} is not one of {', '.join(MEMORY_TYPES)}.")
    else:  # a list of strings: "strings" and "ids" need one at least
        if (not isinstance(value, list)
                or not all(isinstance(text, str) and text.strip() for text in value)
                or (not value and rule != "strings or none")):
            need = "a list of non-empty strings" if rule == "strings or none" else \
                "a non-empty list of non-empty strings"
            raise _bad(f"{where}: '{name}' must be {need}.")
    return value


# -- judging ---------------------------------------------------------------------------------
# How the product says it has no memory: NO_MEMORY_REPLY ("I don't have a memory about that
# yet") and forget_reply ("I have no memory about …"). A model answer that says so in those
# words, with "any" or a plural, counts too.
_NO_MEMORY = re.compile(r"\b(do not|don'?t|dont) have (a|any) memor(y|ies)\b|"
                        r"\bhave no memor(y|ies)\b", re.I)


def says_no_memory(answer: str) -> bool:
    """Does the answer say the chat has no memory of what was asked?"""
    answer = answer.replace("\u2019", "'")
    return answer.strip() == prompts.NO_MEMORY_REPLY or bool(_NO_MEMORY.search(answer))


def _holds_any(text: str, options: list[str]) -> bool:
    lowered = text.lower()
    return any(option.lower() in lowered for option in options)


def _meaning_words(text: str) -> dict[str, str]:
    """stem → word for the content words of `text` spoken to the user ("my" → "your": the
    person a memory is written in is no content), leaving out pronoun contractions
    ("you're", "i've"). Stems let "toasts" match "toasted"."""
    return {stem(word): word for word in content_words(prompts.to_second_person(text))
            if word.split("'")[0] not in STOP_WORDS}


def invented_words(memory: str, said: str) -> list[str]:
    """The content words of `memory` that `said` does not hold, in any person or
    inflection."""
    heard = _meaning_words(said)
    return sorted(word for word_stem, word in _meaning_words(memory).items()
                  if word_stem not in heard)


# -- running ---------------------------------------------------------------------------------
class ChatEvalUnavailable(RuntimeError):
    """The models did not load: nothing can be measured."""


@dataclass
class Turn:
    """What one message got: its events, the answer streamed and how it ended."""

    events: list[dict] = field(default_factory=list)
    crash: str | None = None  # "file:line: Error: message" when the product raised

    @property
    def answer(self) -> str:
        """The answer that stands: 'done' carries it when it replaced what streamed."""
        done = next((event for event in self.events if event["type"] == "done"), None)
        if done is not None and "text" in done:
            return done["text"]
        return self.streamed

    @property
    def streamed(self) -> str:
        """What the tokens said, before any check replaced it."""
        return "".join(event["text"] for event in self.events if event["type"] == "token")

    @property
    def receipt(self) -> list[int]:
        return [item["id"] for event in self.events if event["type"] == "memories"
                for item in event["items"]]

    @property
    def source(self) -> str | None:
        """Who answered, once the answer is done: "model" or "template"."""
        return next((event["stats"]["source"] for event in self.events
                     if event["type"] == "done"), None)

    @property
    def conversation_id(self) -> int | None:
        return next((event["conversation_id"] for event in self.events
                     if event.get("conversation_id")), None)

    def of_type(self, type: str) -> list[dict]:
        return [event for event in self.events if event["type"] == type]

    @property
    def made(self) -> dict | None:
        """The memory saved, or suggested, from what was said: {content, type, …}."""
        for event in self.events:
            if event["type"] == "memory_saved":
                return event["memory"]
            if event["type"] == "memory_suggested":
                return event["suggestion"]
        return None


def _where(failure: BaseException) -> str:
    """The product's line that raised (its deepest frame in lumara_web), and the message."""
    frames = traceback.extract_tb(failure.__traceback__)
    ours = [frame for frame in frames if "lumara_web" in Path(frame.filename).parts]
    frame = (ours or frames)[-1]
    parts = Path(frame.filename).parts
    name = "/".join(parts[parts.index("lumara_web"):]) if "lumara_web" in parts \
        else frame.filename
    return f"{name}:{frame.lineno}: {type(failure).__name__}: {failure}"


def _turn(services: Services, content: str, conversation_id: int | None) -> Turn:
    """One message, as the websocket session runs it: its own connection, the events in
    order; a LumaraError is an error event, anything else a crash."""
    turn = Turn()
    conn = services.connect()
    try:
        request = services.chat.parse_request({"content": content,
                                               "conversation_id": conversation_id})
        for event in services.chat.turn(conn, request, threading.Event()):
            turn.events.append(event)
    except LumaraError as failure:
        turn.events.append({"type": "error", "code": failure.code, "message": failure.message})
    except Exception as failure:  # a product bug: reported with its line, the run goes on
        turn.crash = _where(failure)
    finally:
        conn.close()
    return turn


def _converse(services: Services, messages: list[str]) -> list[Turn]:
    """One conversation: each message after the first continues it."""
    turns: list[Turn] = []
    conversation_id = None
    for message in messages:
        turns.append(_turn(services, message, conversation_id))
        conversation_id = turns[-1].conversation_id or conversation_id
    return turns


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return "“" + (text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "…") + "”"


def judge_row(row: Row, turn: Turn, ids: dict[str, int], names: dict[int, str]) -> dict:
    """The row's checks (True: as it should be; None: not judged) and what happened."""
    fields = row.fields
    answer = turn.answer
    receipt = ", ".join(names.get(memory_id, f"#{memory_id}") for memory_id in turn.receipt)
    errors = [f"error {event.get('code')}: {event.get('message')}"
              for event in turn.of_type("error")]
    checks: dict[str, bool | None] = {}
    happened = [f"answer {_quote(answer)}" if answer else "no answer",
                f"receipt [{receipt}]"]
    if turn.streamed and turn.streamed != answer:
        happened.insert(1, f"replacing the model's {_quote(turn.streamed)}")
    if row.kind in ("question", "followup"):
        checks["answer"] = _holds_any(answer, fields["answer_any"])
        checks["receipt"] = any(ids[gold] in turn.receipt for gold in fields["gold"])
    elif row.kind == "unanswerable":
        checks["honest"] = says_no_memory(answer) and not _holds_any(answer,
                                                                      fields["must_not"])
    elif row.kind == "general":
        checks["answer"] = turn.source == "model" and _holds_any(answer, fields["answer_any"])
        happened.append(f"answered by the {turn.source or 'nothing'}")
    else:  # a statement, contradiction or addition: what was remembered
        happened = happened[:1]
        made = turn.made
        kept = "saved" if turn.of_type("memory_saved") else "suggested"
        if made is not None:
            happened.append(f"{kept} {made['type']} {_quote(made['content'])}")
        for event in turn.of_type("memory_exists"):
            existing = event["existing"]["memory"]["id"]
            happened.append(f"not saved: repeats {names.get(existing, f'#{existing}')}")
        if made is None and not turn.of_type("memory_exists"):
            happened.append("no memory saved or suggested")
        against = [event["existing_memory"]["id"] for event in turn.of_type("contradiction")]
        if against:
            happened.append("contradiction against "
                            + ", ".join(names.get(memory_id, f"#{memory_id}")
                                        for memory_id in against))
        if row.kind == "statement":
            invented = invented_words(made["content"], fields["say"]) if made else []
            if invented:
                happened.append(f"invented: {', '.join(invented)}")
            checks["faithful"] = None if made is None else not invented
            checks["complete"] = made is not None and all(
                word.lower() in made["content"].lower() for word in fields["must_have"])
            checks["type"] = made is not None and made["type"] == fields["type"]
        elif row.kind == "contradiction":
            checks["flagged"] = ids[fields["conflicts"]] in against
        else:
            checks["not_flagged"] = ids[fields["related"]] not in against
    if turn.crash:
        happened.append(f"crashed at {turn.crash}")
        checks = {name: False if value is not None else None for name, value in checks.items()}
    happened += errors
    return {"line": row.line, "kind": row.kind, "said": row.said, "checks": checks,
            "happened": "; ".join(happened), "crash": turn.crash}


def _figures(results: list[dict]) -> dict[str, dict]:
    figures = {}
    for figure in FIGURES:
        judged = [result["checks"][figure.check] for result in results
                  if result["kind"] == figure.kind
                  and result["checks"].get(figure.check) is not None]
        counted = sum((not passed) if figure.share_of_failures else passed
                      for passed in judged)
        figures[figure.key] = {"share": counted / len(judged) if judged else None,
                               "count": counted, "n": len(judged)}
    return figures


def _wait_for_models(services: Services) -> None:
    for load in (services.embeddings.model, services.engine.model):
        if not load.settle(MODEL_WAIT_SECONDS) or load.state != "ready":
            raise ChatEvalUnavailable(f"the {load.what} did not load: "
                                      f"{load.error or 'still loading'}")


def run_scenario(scenario: Scenario, data_dir: Path, *, components: Mapping[str, Any],
                 settings: Mapping[str, Any],
                 log: Callable[[str], None] = lambda line: None) -> dict:
    """Every row of one scenario on fresh services in `data_dir` (the settings' paths moved
    there), with the `components` given (the embedder and engine already loaded)."""
    started = time.perf_counter()
    settings = {**settings, "data_dir": Path(data_dir), "db_path": Path(data_dir) / "lumara.db"}
    services = build_services(settings, dict(components))
    services.start()
    try:
        _wait_for_models(services)
        ids: dict[str, int] = {}
        conn = services.connect()
        try:
            for row in scenario.memories:  # as POST /api/memories stores them
                memory, _ = services.memories.add(conn, validation.parse_new_memory(
                    {"content": row.fields["content"], "type": row.fields["type"]},
                    services.settings))
                ids[row.fields["id"]] = memory.id
        finally:
            conn.close()
        names = {stored: memory_id for memory_id, stored in ids.items()}
        results = []
        for row in scenario.rows:
            turns = _converse(services, row.said)
            result = judge_row(row, turns[-1], ids, names)
            crashed = [turn.crash for turn in turns[:-1] if turn.crash]
            if crashed and not result["crash"]:  # an earlier turn of a follow-up
                result["crash"] = crashed[0]
                result["happened"] += f"; an earlier turn crashed at {crashed[0]}"
                result["checks"] = {name: False if value is not None else None
                                    for name, value in result["checks"].items()}
            made = turns[-1].made
            if made is not None and "id" in made and turns[-1].of_type("memory_saved"):
                names[made["id"]] = f"line {row.line}"
            results.append(result)
            missed = [name for name, passed in result["checks"].items() if passed is False]
            log(f"  line {row.line} {row.kind}: "
                + (f"missed {', '.join(missed)}" if missed else "ok"))
    finally:
        services.vector_index.close()
    return {"path": str(scenario.path), "memories": len(scenario.memories),
            "rows": len(scenario.rows),
            "kinds": {kind: sum(row.kind == kind for row in scenario.rows)
                      for kind in FIELDS if kind != "memory"},
            "figures": _figures(results),
            "misses": [{key: result[key] for key in ("line", "kind", "said", "happened")}
                       | {"failed": [name for name, passed in result["checks"].items()
                                     if passed is False]}
                       for result in results
                       if any(passed is False for passed in result["checks"].values())],
            "crashes": [{"line": result["line"], "at": result["crash"]}
                        for result in results if result["crash"]],
            "seconds": round(time.perf_counter() - started, 1)}


def run(paths: list[Path], *, components: Mapping[str, Any], settings: Mapping[str, Any],
        log: Callable[[str], None] = lambda line: None) -> dict:
    """Every chat file, each on its own fresh database (every file is checked before any
    runs). `components`: {"embedder", "engine"}, the models already loaded; `settings`:
    the app's settings (their data folder is replaced by a temporary one per file)."""
    scenarios = [load_scenario(path) for path in paths]
    files = []
    with tempfile.TemporaryDirectory(prefix="lumara-chat-eval-") as tmp:
        for number, scenario in enumerate(scenarios):
            log(f"  {scenario.path}: {len(scenario.rows)} conversations")
            files.append(run_scenario(scenario, Path(tmp) / str(number), components=components,
                                      settings=settings, log=log))
    return {"files": files}


# -- rendering -------------------------------------------------------------------------------
def markdown(result: dict) -> str:
    """Per file: the figures with their counts, then every miss (row, what was said, what
    happened)."""
    lines: list[str] = []
    for file in result["files"]:
        kinds = ", ".join(f"{count} {kind}" for kind, count in file["kinds"].items() if count)
        lines += [f"### Chat: `{file['path']}` ({file['rows']} conversations over "
                  f"{file['memories']} memories: {kinds})", "",
                  "Each row a fresh conversation through the chat the websocket uses "
                  "(chat_eval.py): real models, a fresh SQLite file, memories stored first; "
                  f"{file['seconds']:,.0f} s.", "",
                  "| Figure | Share | Count |", "|---|---|---|"]
        for figure in FIGURES:
            value = file["figures"][figure.key]
            share = "—" if value["share"] is None else f"{value['share']:.2f}"
            lines.append(f"| {figure.label} | {share} | {value['count']} of {value['n']} |")
        if file["crashes"]:
            lines += ["", "The product crashed:", ""]
            lines += [f"- line {crash['line']}: {crash['at']}" for crash in file["crashes"]]
        lines += ["", "Misses:" if file["misses"] else "Misses: none.", ""]
        for miss in file["misses"]:
            said = " → ".join(_quote(text) for text in miss["said"])
            lines.append(f"- line {miss['line']} ({miss['kind']}, missed "
                         f"{', '.join(miss['failed'])}): {said} — {miss['happened']}")
        lines.append("")
    return "\n".join(lines)
