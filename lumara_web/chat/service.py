"""One chat turn, as a stream of event dicts. Knows nothing of websockets:
web/chat_socket.py forwards the events; tests read them from a list.

A turn: save the user's message → understand it (understanding.py) → for questions and
requests, embed it and retrieve memories → answer (the model; a template for statements, small
talk and forgetting) → save the answer → for statements, extract a memory (save, suggest or
drop) and judge possible contradictions; for a request to forget, offer the matching memories
(deleted only once the user confirms).
"""

from __future__ import annotations

import functools
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

from .. import lexicon
from ..errors import LumaraError, NotFound, ValidationError
from ..inference.embeddings import EmbeddingService
from ..inference.engine import Engine, GenerationRequest, Job
from ..memory import pair_judge, validation
from ..memory.extraction import MemoryExtractor
from ..memory.findings import pair_thresholds
from ..memory.pair_judge import ContradictionJudge, PairVerdict
from ..memory.service import MemoryService
from ..memory.validation import NewMemory
from ..observability.perf import PerfMonitor
from ..storage import conversation_store, review_store, store
from ..storage.store import ScoredMemory
from ..text import content_words, is_personal, names_in
from . import grounding, prompts
from .outcomes import outcome_of
from .rendering import render_markdown
from .runs import TurnRuns
from .understanding import Understanding, refers_back, understand

# How often a waiting turn re-checks its queue position, in seconds.
QUEUE_POLL_SECONDS = 0.1
# Most contradiction candidates judged by the model per new memory (each costs a model call).
MAX_JUDGED_CANDIDATES = 3
TITLE_CHARS = 60
# Longest answer to a question about the user's own life, in tokens (answer_max_tokens, if
# lower, wins): the answer is a sentence or two from the memories, and a small model that
# runs on past that is wandering off them.
PERSONAL_ANSWER_TOKENS = 96


@dataclass
class TurnRequest:
    content: str
    conversation_id: int | None = None
    # Redo the conversation's last turn: "regenerate" answers its message again (what it
    # remembered stays); "edit" puts `content` in its place (what it saved goes to the trash).
    redo: str | None = None


REDOS = ("regenerate", "edit")


@dataclass(frozen=True)
class Answer:
    """A question answered outside any conversation, and the memories it rests on (receipt
    items, as the chat's 'memories' event lists them)."""

    text: str
    memories: list[dict]

    def to_dict(self) -> dict:
        return {"answer": self.text, "memories": self.memories}


def receipt_item(hit: ScoredMemory) -> dict:
    memory = hit.memory
    return {"id": memory.id, "content": memory.content, "type": memory.type,
            "similarity": round(hit.similarity, 4)}


def contradiction_verdict(verdict: PairVerdict) -> dict:
    """A 'contradiction' event's verdict, in the shape clients read (contradicts, not a
    label)."""
    return {"contradicts": verdict.contradicts, "confidence": round(verdict.confidence, 3),
            "explanation": verdict.explanation, "source": verdict.source}


class ChatService:
    def __init__(self, *, engine: Engine, embeddings: EmbeddingService,
                 memories: MemoryService, extractor: MemoryExtractor,
                 judge: ContradictionJudge, settings: Mapping[str, Any],
                 monitor: PerfMonitor | None = None):
        self.engine = engine
        self.monitor = monitor
        self.embeddings = embeddings
        self.memories = memories
        self.extractor = extractor
        self.judge = judge
        self.settings = settings
        self._reading_ahead: Job | None = None  # the last read_ahead job (one KV state)
        self.runs = TurnRuns()  # turns under way, for pages that attach to them

    # -- validation -----------------------------------------------------------------------
    def parse_request(self, frame: Mapping[str, Any]) -> TurnRequest:
        redo = frame.get("redo")
        if redo is not None and redo not in REDOS:
            raise ValidationError(f"redo must be one of {', '.join(REDOS)}, or left out.",
                                  code="invalid_redo")
        if redo is not None and frame.get("conversation_id") is None:
            raise ValidationError("Say which conversation's last turn to redo: "
                                  "conversation_id.", code="invalid_conversation_id")
        content = frame.get("content")
        if redo == "regenerate":
            content = ""  # the last message's, read by the turn
        elif content is None or (isinstance(content, str) and not content.strip()):
            raise ValidationError("Write a message first: content is empty.",
                                  code="empty_content")
        else:
            # Length and clean text (no NUL, no lone surrogates): the memory API's own checks.
            content = validation.parse_text(content, self.settings["max_message_chars"],
                                            field="The message")
        conversation_id = frame.get("conversation_id")
        if conversation_id is not None and (
                isinstance(conversation_id, bool) or not isinstance(conversation_id, int)
                or not 0 < conversation_id < 2**63):
            raise ValidationError("conversation_id must be a conversation's id (a positive "
                                  "whole number) or left out for a new conversation.",
                                  code="invalid_conversation_id")
        return TurnRequest(content, conversation_id, redo)

    # -- the turn -------------------------------------------------------------------------
    def turn(self, conn: Any, request: TurnRequest, stop: threading.Event | None = None,
             stored: Callable[[int, int], None] | None = None) -> Iterator[dict]:
        """The turn's events. `stored(conversation_id, message_id)` is called once the
        message is in the conversation, before it is answered."""
        stop = stop or threading.Event()
        started = time.perf_counter()
        self._drop_read_ahead()  # this turn's own prompt reads what it would have read
        conversation = self._conversation(conn, request)
        content, carried = request.content, []
        if request.redo is not None:
            content, carried, events = self._take_back_last_turn(conn, conversation,
                                                                 request)
            yield from events
        history = self._history(conn, conversation)
        understood = understand(content)
        # A follow-up ("What does she teach?") is looked up with the question before it.
        earlier = self._last_question(conn, conversation) \
            if refers_back(understood.text) else None
        user_message = conversation_store.add_message(conn, conversation.id, "user", content)
        if stored is not None:
            stored(conversation.id, user_message.id)
        try:
            answer_id = yield from self._answer(conn, conversation.id, history, understood,
                                                stop, started, earlier)
        except LumaraError as failure:  # before any answer: busy, model unavailable, …
            # The message is saved: the conversation id lets the client carry on in it.
            yield {"type": "error", "code": failure.code, "message": failure.message,
                   "conversation_id": conversation.id}
            return
        for outcome in carried if answer_id is not None else ():
            conversation_store.add_outcome(conn, answer_id, outcome)
        if answer_id is not None and understood.intent == "statement" and \
                request.redo != "regenerate" and not stop.is_set():
            for event in self._remember(conn, understood.text, conversation.id,
                                        user_message.id, stop):
                if (outcome := outcome_of(event)) is not None:
                    # Kept with the answer: the conversation shows it after a reload too.
                    conversation_store.add_outcome(conn, answer_id, outcome)
                    event = {**event, "outcome": outcome}
                yield event
        if answer_id is not None and not stop.is_set():
            self._read_ahead(conn, conversation.id)

    # -- one question, stored nowhere ----------------------------------------------------
    def ask(self, conn: Any, question: str, stop: threading.Event | None = None) -> Answer:
        """`question` answered from the memories as the chat answers a question (the same
        retrieval and grounding checks), with the memories the answer rests on. Nothing is
        stored: no conversation, nothing remembered (the MCP server's ask tool)."""
        understood = understand(question)
        if understood.intent not in ("question", "general"):
            # Put as a question, so looked up as one: "my dog's name" is not a statement.
            understood = Understanding("question", understood.text,
                                       needs_memory=is_personal(understood.text))
        query = understood.text
        hits, personal, subject = self._grounding(conn, query, understood)
        receipt = [receipt_item(hit) for hit in hits]
        if personal and not hits:
            return Answer(prompts.no_memory_reply(subject), [])
        job = self.engine.submit(self._answer_request([], query, hits, personal), stop)
        text, looping = "", False
        try:
            for piece in job:
                text += piece
                if (end := repetition_end(text)) is not None:
                    text, looping = text[:end], True  # a loop: the rest only repeats
                    job.cancel()
                    break
        except LumaraError:
            raise  # busy, model unavailable: the caller says so
        except Exception as failure:  # llama.cpp failed mid-answer
            raise LumaraError(f"The model failed while answering ({type(failure).__name__}).",
                              code="generation_failed") from None
        if not looping and (end := repetition_end(text, finished=True)) is not None:
            text, looping = text[:end], True
        text = self._checked(text.rstrip(), query, understood,
                             [item["content"] for item in receipt], personal, subject, looping)
        return Answer(text, receipt)

    def _take_back_last_turn(self, conn: Any, conversation: conversation_store.Conversation,
                             request: TurnRequest) -> tuple[str, list[dict], list[dict]]:
        """Removes the conversation's last message and its answer, for the turn to be done
        again: (the message to answer, the outcomes the new answer keeps, events saying
        what went). Regenerating keeps what the turn remembered; an edit sends the memories
        it saved to the trash (undoable there), as the statement they came from is gone."""
        messages = conversation_store.recent_messages(conn, conversation.id, limit=2)
        last_user = next((i for i in range(len(messages) - 1, -1, -1)
                          if messages[i].role == "user"), None)
        if last_user is None:
            raise ValidationError("This conversation has no message to redo.",
                                  code="nothing_to_redo")
        taken = messages[last_user:]
        outcomes = [outcome for message in taken for outcome in message.outcomes]
        trashed = []
        if request.redo == "edit":
            for outcome in outcomes:
                if outcome["kind"] == "saved" and \
                        store.get_memory(conn, outcome["memory_id"]) is not None:
                    trashed.append(self.memories.delete(conn, outcome["memory_id"]).to_dict())
            outcomes = []
        conversation_store.delete_messages(conn, [message.id for message in taken])
        content = messages[last_user].content if request.redo == "regenerate" \
            else request.content
        return content, outcomes, [{"type": "redo", "redo": request.redo,
                                    "removed_message_ids": [m.id for m in taken],
                                    "trashed": trashed}]

    def _drop_read_ahead(self) -> None:
        previous, self._reading_ahead = self._reading_ahead, None
        if previous is not None and not previous.started.is_set():
            self.engine.cancel(previous)

    def _read_ahead(self, conn: Any, conversation_id: int) -> None:
        """While the person reads the reply and writes the next message, the model reads
        the conversation as the next answer prompt will start (a templated reply, a
        replaced answer, a moved history window): the next turn reads only its message.
        A read-ahead still waiting when the next turn comes is dropped."""
        self._drop_read_ahead()
        conversation = conversation_store.get_conversation(conn, conversation_id)
        history = self._history(conn, conversation) if conversation is not None else []
        if history:
            self._reading_ahead = self.engine.read_ahead(
                prompts.conversation_so_far(history), pinned=prompts.PINNED_MESSAGES)

    def _answer(self, conn: Any, conversation_id: int, history: list[dict],
                understood: Understanding, stop: threading.Event,
                started: float, earlier: str | None = None) -> Iterator[dict]:
        """Events from the receipt to 'done'; returns the answer's message id if it
        completed, else None."""
        intent, content = understood.intent, understood.text
        query = f"{earlier} {content}" if earlier else content
        hits, personal, subject = self._grounding(conn, query, understood)
        if intent == "forget":
            # Offered, never deleted here: the page deletes what the user confirms.
            yield {"type": "forget_candidates",
                   "items": [hit.memory.to_dict() for hit in hits]}
            reply = prompts.forget_reply(content, len(hits))
            hits = []  # offered, not used: the reply rests on no memory
        elif intent in ("question", "general") and personal and not hits:
            reply = prompts.no_memory_reply(subject)
        else:
            reply = self._templated_reply(understood)
        receipt = [receipt_item(hit) for hit in hits]

        job: Job | None = None
        if intent in ("question", "general") and (hits or not personal):
            job = self.engine.submit(self._answer_request(history, content, hits, personal),
                                     stop)
            yield from self._queue_positions(job)
        yield {"type": "memories", "items": receipt}

        text, status, error = "", "complete", None
        pieces = iter(job) if job else _words(reply)
        first_token_at = None
        tokens = 0
        looping = False
        try:
            for piece in pieces:
                if stop.is_set():
                    break
                first_token_at = first_token_at or time.perf_counter()
                tokens += 1
                text += piece
                yield {"type": "token", "text": piece}
                if job is not None and (end := repetition_end(text)) is not None:
                    # The small model fell into a loop ("No, no, no, …"): the rest would
                    # only repeat. 'done' carries the answer without the repeats.
                    text, looping = text[:end], True
                    job.cancel()
                    break
        except LumaraError as failure:
            status, error = "error", failure
        except Exception as failure:  # llama.cpp failed mid-answer: say so, keep the text
            status, error = "error", LumaraError(f"The model failed while answering "
                                                 f"({type(failure).__name__}).",
                                                 code="generation_failed")
        if stop.is_set() and status == "complete" and not looping:
            status = "stopped"
        if job is not None and status == "complete" and not looping and \
                (end := repetition_end(text, finished=True)) is not None:
            text, looping = text[:end], True  # its last line said an earlier one again
        if job is not None and status == "complete":
            text = text.rstrip()  # what a stop string left ("Paris.\n" of "Paris.\nQuestion:")
        memories = [item["content"] for item in receipt]
        model_text = text
        if job is not None and status == "complete":
            # ('done' carries the reply that replaces what streamed.)
            text = self._checked(text, query, understood, memories, personal, subject,
                                 looping)

        stats = _stats(started, first_token_at, time.perf_counter(), tokens, job)
        if job is not None and status == "complete" and text == model_text:
            # Shown under the answer (and after a reload): it did not end by itself.
            stats["cut"] = ("repetition" if looping else
                            "length" if job.finish_reason == "length" else None)
        if job is not None and status == "complete":
            self._record(stats)
        answer = conversation_store.add_message(conn, conversation_id, "assistant", text,
                                                status=status, memories=receipt, stats=stats)
        if error is not None:
            yield {"type": "error", "code": error.code, "message": error.message,
                   "conversation_id": conversation_id}
            return None
        yield {"type": "done", "message_id": answer.id, "conversation_id": conversation_id,
               "status": status, "stats": stats, "text": text,
               "html": render_markdown(text)}
        return answer.id if status == "complete" else None

    def _grounding(self, conn: Any, query: str,
                   understood: Understanding) -> tuple[list[ScoredMemory], bool, str | None]:
        """For a message looked up as `query`: the memories an answer may rest on, whether
        it must rest on them alone (a question about the user's life), and what such a
        question asks about ("dog" in "What is my dog's name?")."""
        intent = understood.intent
        hits: list[ScoredMemory] = []
        if intent in ("question", "general", "forget"):
            # A request too: "When does the plumber come?" names no one, yet a memory answers.
            hits = self.memories.recall(conn, query, self.embeddings.embed(query),
                                        k=self.settings["chat_memory_k"],
                                        threshold=self.settings["chat_memory_threshold"],
                                        judged=True)
        personal = understood.needs_memory
        if intent in ("question", "general"):
            # "What does Dorota do for a living?" is about the user's life when a memory
            # names Dorota (a place, "Paris", is anyone's): answered from those memories.
            people = {name for name in names_in(query) if not lexicon.is_a(name, "location")}
            named = [hit for hit in hits if people & content_words(hit.memory.content)]
            if named or people and self.memories.names_known(conn, people):
                personal, hits = True, named
        subject = grounding.asked_about(query) if personal else None
        if subject and not any(grounding.mentions(hit.memory.content, subject) for hit in hits):
            hits = []  # memories of something else: "my dog" is not answered by the cat
        return hits, personal, subject

    def _answer_request(self, history: list[dict], content: str, hits: list[ScoredMemory],
                        personal: bool) -> GenerationRequest:
        # A memory-grounded answer is a sentence or two; a general one may run longer.
        limit = self.settings["answer_max_tokens"]
        return GenerationRequest(
            prompts.answer_messages(history, content, [hit.memory.content for hit in hits]),
            max_tokens=min(limit, PERSONAL_ANSWER_TOKENS) if personal else limit,
            purpose="chat", pinned=prompts.PINNED_MESSAGES, stop=prompts.ANSWER_STOPS)

    def _checked(self, text: str, query: str, understood: Understanding, memories: list[str],
                 personal: bool, subject: str | None, looping: bool) -> str:
        """The model's complete answer, or what replaces it when the memories say more or
        other than it does."""
        if personal:
            return self._grounded(text, query, understood.text, memories, subject, looping)
        if understood.intent == "question" and memories and \
                grounding.covers(memories[0], query) and \
                (looping or grounding.adds_nothing(text, query, memories)):
            # "How do I feed the sourdough starter?": a memory holds the answer the model
            # did not give.
            return prompts.memory_reply(memories[0])
        return text

    @staticmethod
    def _grounded(answer: str, question: str, asked: str, memories: list[str],
                  subject: str | None, looping: bool) -> str:
        """The model's answer to a personal question (`asked`, looked up as `question`), or
        what replaces it when it cannot be trusted (a name, number or date no memory holds,
        a word of its own, nothing from the memories, not what was asked, a loop): the
        memory itself when it holds what was asked for; else, said to be the closest, one
        about the same thing; else the honest "no memory" reply."""
        fault = "loop" if looping else grounding.answer_fault(answer, question, memories,
                                                                asked)
        if fault is None:
            return answer
        if grounding.answers(memories[0], question, subject):
            return prompts.memory_reply(memories[0])
        if grounding.related(memories[0], question, subject):
            return prompts.closest_memory_reply(memories[0])
        return prompts.no_memory_reply(subject)

    @staticmethod
    def _last_question(conn: Any, conversation: conversation_store.Conversation) -> str | None:
        """The last thing the user asked about in this conversation (a question or a
        request, as understood), for follow-ups that refer back to it."""
        for message in reversed(conversation_store.recent_messages(conn, conversation.id,
                                                                   limit=2)):
            if message.role == "user":
                understood = understand(message.content)
                return understood.text if understood.intent in ("question", "general") \
                    else None
        return None

    def _conversation(self, conn: Any, request: TurnRequest) -> conversation_store.Conversation:
        if request.conversation_id is None:
            title = " ".join(request.content.split())
            if len(title) > TITLE_CHARS:
                title = title[:TITLE_CHARS].rsplit(" ", 1)[0] + "…"
            return conversation_store.create_conversation(conn, title)
        conversation = conversation_store.get_conversation(conn, request.conversation_id)
        if conversation is None:
            raise NotFound(f"No conversation has id {request.conversation_id}.",
                           code="conversation_not_found")
        return conversation

    def _history(self, conn: Any,
                 conversation: conversation_store.Conversation) -> list[dict]:
        """Earlier questions and answers, each question exactly as the model saw it (with
        its memories), so the prompt's prefix matches the last one and llama.cpp reuses its
        KV cache. Statements, small talk and their templated replies are left out: the
        model answers questions, and a history of "Noted: …" replies teaches it to answer
        a question with "Noted: …"."""
        messages = conversation_store.recent_messages(
            conn, conversation.id, limit=history_window(
                conversation.message_count, self.settings["chat_history_messages"]))
        turns: list[dict] = []
        for message, reply in zip(messages, messages[1:]):
            if message.role != "user" or reply.role != "assistant" or not reply.content:
                continue  # an unanswered message (stopped before a word): leave it out
            understood = understand(message.content)
            if understood.intent not in ("question", "general"):
                continue
            # As it was asked: see _answer.
            turns += [{"role": "user", "content": prompts.question_turn(
                          understood.text, [item["content"] for item in reply.memories])},
                      {"role": "assistant", "content": prompts.as_read_back(reply.content)}]
        return turns

    def _queue_positions(self, job: Job) -> Iterator[dict]:
        """'queued' events while the job waits: its place, and whether the model loads."""
        last = None
        while not job.started.is_set():
            if job.stop.is_set():
                self.engine.cancel(job)
                return
            position = self.engine.position(job)
            current = (position, self.engine.model.state)
            # First in line with the model ready: the worker is taking it now, not waiting.
            waiting = position > 1 or (position == 1 and current[1] != "ready")
            if waiting and current != last:
                last = current
                yield {"type": "queued", "position": position,
                       "model_loading": self.engine.model.state == "loading"}
            job.started.wait(QUEUE_POLL_SECONDS)

    @staticmethod
    def _templated_reply(understood: Understanding) -> str:
        if understood.intent == "statement":
            return prompts.acknowledgement(understood.text)
        if understood.intent == "small_talk":
            return prompts.small_talk_reply(understood.text)
        return prompts.NO_MEMORY_REPLY

    # -- after the answer: remember -------------------------------------------------------
    def _remember(self, conn: Any, statement: str, conversation_id: int, message_id: int,
                  stop: threading.Event) -> Iterator[dict]:
        try:
            proposal = self.extractor.propose(statement, stop)
        except LumaraError as failure:
            yield {"type": "error", "code": failure.code,
                   "message": f"Could not extract a memory: {failure.message}",
                   "phase": "remember"}
            return
        if proposal is None or stop.is_set():
            return
        settings = self.settings
        if proposal.confidence < settings["extraction_suggest_confidence"]:
            return
        findings = self.memories.check(conn, proposal.content)
        same = [hit for hit in findings.duplicates
                if hit.similarity >= settings["chat_skip_duplicate_threshold"]]
        if same:
            yield {"type": "memory_exists", "proposal": proposal.to_dict(),
                   "existing": same[0].to_dict()}
            return
        reasons = list(proposal.reasons)
        if findings.duplicates:
            # Most likely a rewording, but a contradiction the words show no sign of can
            # look like one ("I sleep well after coffee" / "coffee keeps me awake"), and
            # dropping it would lose it for good: the user decides.
            reasons.append(f"may repeat memory {findings.duplicates[0].memory.id}")
        # An update to a remembered fact ("Ana moved to Porto") is saved whatever its
        # confidence, so that its contradiction can be offered: the user settles the two.
        updates = any(findings.verdicts[hit.memory.id].contradicts
                      for hit in findings.contradiction_candidates)
        unsure = proposal.confidence < settings["extraction_save_confidence"] and not updates
        if findings.duplicates or unsure:
            suggestion = review_store.add_suggestion(
                conn, content=proposal.content, type=proposal.type, tags=proposal.tags,
                confidence=proposal.confidence, conversation_id=conversation_id,
                message_id=message_id)
            yield {"type": "memory_suggested", "suggestion": suggestion.to_dict(),
                   "reasons": reasons}
            return
        memory, findings = self.memories.add(
            conn, NewMemory(content=proposal.content, type=proposal.type, tags=proposal.tags,
                            metadata={"conversation_id": conversation_id,
                                      "message_id": message_id}), source="chat")
        yield {"type": "memory_saved", "memory": memory.to_dict(),
               "confidence": proposal.confidence}
        for candidate in findings.contradiction_candidates[:MAX_JUDGED_CANDIDATES]:
            if stop.is_set():
                return
            verdict = findings.verdicts[candidate.memory.id]
            if settings["contradiction_model_judge"]:  # off by default: docs/QUALITY.md
                verdict = pair_judge.reconsider(
                    verdict, candidate.similarity,
                    functools.partial(self.judge.judge, candidate.memory.content,
                                      memory.content, stop),
                    pair_thresholds(settings))
            if not verdict.contradicts or \
                    verdict.confidence < settings["contradiction_judge_confidence"]:
                continue
            contradiction = review_store.add_contradiction(
                conn, memory_id=memory.id, existing_memory_id=candidate.memory.id,
                similarity=candidate.similarity, confidence=verdict.confidence,
                explanation=verdict.explanation)
            yield {"type": "contradiction", "contradiction": contradiction.to_dict(),
                   "memory": memory.to_dict(), "existing_memory": candidate.memory.to_dict(),
                   "verdict": contradiction_verdict(verdict)}

    def _record(self, stats: dict) -> None:
        """Model answers only: a templated reply's speed says nothing about the model."""
        if self.monitor is None:
            return
        self.monitor.record("chat.total_ms", stats["total_ms"])
        if stats["ttft_ms"] is not None:
            self.monitor.record("chat.ttft_ms", stats["ttft_ms"])
        if stats["tokens_per_s"] is not None:
            self.monitor.record("chat.tokens_per_s", stats["tokens_per_s"])

    # -- start-up -------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Have the model read the fixed prompt prefixes once, in the background, so the
        first real question only reads its own part (llama.cpp keeps the prefix states)."""
        prefixes = [prompts.answer_messages([], "What do you remember?", []),
                    self.extractor.messages("I like tea.")]
        if self.settings["contradiction_model_judge"]:  # off: the judge never asks the model
            prefixes.append(self.judge.messages("I drink tea.", "I like tea."))
        for messages in prefixes:
            try:
                self.engine.submit(GenerationRequest(messages, max_tokens=1, purpose="warmup"))
            except LumaraError:
                return  # the model failed to load or is busy: nothing to warm


# A phrase of 3–80 characters said four times running at the end of the text.
_LOOP = re.compile(r"(.{3,80}?)(?:[\s,;.]*\1){3,}[\s,;.]*$", re.S)
# Where to look for one: enough for four of the longest phrase.
_LOOP_WINDOW = 400


# A line at least this long said again is a repeat, not a list ("- yes").
_REPEATED_LINE_CHARS = 12


def repetition_end(text: str, finished: bool = False) -> int | None:
    """Where `text` should end when it closes with a phrase repeated four times or more
    (after the phrase's first time), or says a whole line again (before the repeat), or
    None. `finished`: the text is whole, so its last line is complete too."""
    start = max(0, len(text) - _LOOP_WINDOW)
    match = _LOOP.search(text, start)
    if match is not None and match.group(1).strip():
        return match.start(1) + len(match.group(1))
    return _repeated_line_end(text + "\n" if finished else text)


def _repeated_line_end(text: str) -> int | None:
    """'A: "I'm a memory assistant."' a second time: the answer ends before it."""
    seen: set[str] = set()
    position = 0
    for line in text.split("\n")[:-1]:  # complete lines: the last may still grow
        said = " ".join(line.split()).lower()
        if len(said) >= _REPEATED_LINE_CHARS and said in seen:
            return len(text[:position].rstrip())
        seen.add(said)
        position += len(line) + 1
    return None


def history_window(count: int, limit: int) -> int:
    """How many of a conversation's last `count` messages to replay: at most `limit`, and
    the window's start moves in steps of half of it rather than one message a turn. The
    prompt then starts the same way for several turns, so llama.cpp reuses what it read; a
    window sliding every turn would make the model re-read the whole history each time."""
    step = max(1, limit // 2 // 2 * 2)  # even: a turn is two messages, so start on a question
    start = -(-max(0, count - limit) // step) * step  # rounded up to a multiple of step
    return count - start


def _words(text: str) -> Iterator[str]:
    """A templated reply, streamed like model tokens (a word and its trailing space)."""
    words = text.split(" ")
    for index, word in enumerate(words):
        yield word if index == len(words) - 1 else word + " "


def _stats(started: float, first_token_at: float | None, finished: float, tokens: int,
           job: Job | None) -> dict:
    generating = finished - first_token_at if first_token_at else 0.0
    return {
        "ttft_ms": round((first_token_at - started) * 1000, 1) if first_token_at else None,
        "total_ms": round((finished - started) * 1000, 1),
        "tokens": tokens,
        # After the first token, per second; None when too few tokens to say.
        "tokens_per_s": round((tokens - 1) / generating, 1) if tokens > 1 and generating else None,
        "queue_ms": round((job.started_at - job.queued_at) * 1000, 1)
        if job and job.started_at else 0.0,
        "source": "model" if job else "template",
    }
