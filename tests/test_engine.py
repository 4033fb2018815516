"""The engine's queue and worker (on FakeEngine: the real Engine with scripted generation)
and fit_to_context. No real model here."""

from __future__ import annotations

import threading

import pytest

from lumara_web.errors import LumaraError, ModelUnavailable
from lumara_web.inference.engine import (
    TOKENS_PER_MESSAGE,
    Engine,
    EngineBusy,
    fit_to_context,
)

from .fakes import FakeEngine
from .helpers import WAIT, GatedEngine, request, started, wait_idle, wait_until


def asked(engine: FakeEngine) -> list[str]:
    """The user text of each request the engine generated for, in order."""
    return [r.messages[-1]["content"] for r in engine.requests]


# -- the queue ----------------------------------------------------------------------------
def test_jobs_run_in_submission_order():
    engine = GatedEngine()
    for reply in ("one", "two", "three", "four"):
        engine.enqueue(reply)
    first = engine.submit(request("first"))
    started(first)  # the worker holds "first"; the others queue behind it
    later = [engine.submit(request(name)) for name in ("second", "third", "fourth")]
    engine.open()
    assert [job.text() for job in (first, *later)] == ["one", "two", "three", "four"]
    assert asked(engine) == ["first", "second", "third", "fourth"]


def test_waiting_positions_count_down_as_earlier_jobs_finish():
    engine = GatedEngine()
    first = engine.submit(request("first"))
    started(first)
    second, third, fourth = (engine.submit(request(name)) for name in ("b", "c", "d"))
    assert engine.position(first) == 0  # running
    assert [engine.position(job) for job in (second, third, fourth)] == [2, 3, 4]
    assert engine.status()["queue"] == {"waiting": 3, "running": True, "max": 16}

    engine.allow(1)  # "OK." is one token: the first job finishes, the second starts
    assert first.text() == "OK."
    started(second)
    assert [engine.position(job) for job in (second, third, fourth)] == [0, 2, 3]

    engine.allow(1)
    started(third)
    assert [engine.position(job) for job in (third, fourth)] == [0, 2]
    engine.open()
    assert fourth.text() == "OK."
    assert engine.position(fourth) == 0
    wait_idle(engine)


def test_a_full_queue_refuses_more_with_busy():
    engine = GatedEngine(max_queue=2)
    running = engine.submit(request("running"))
    started(running)  # off the waiting list: two more may wait
    waiting = [engine.submit(request("w1")), engine.submit(request("w2"))]
    with pytest.raises(EngineBusy) as refused:
        engine.submit(request("one too many"))
    assert refused.value.code == "busy" and refused.value.status == 503
    assert "2 requests waiting" in refused.value.message
    assert "one too many" not in asked(engine)
    engine.open()
    assert [job.text() for job in (running, *waiting)] == ["OK."] * 3
    wait_idle(engine)
    assert engine.submit(request("room again")).text() == "OK."  # the queue has room again


def test_stop_mid_stream_ends_within_a_token():
    engine = FakeEngine(token_delay=0.01)
    engine.enqueue(" ".join(f"w{i}" for i in range(200)))
    job = engine.submit(request())
    before, after = 0, 0
    for _ in job:
        if job.stop.is_set():
            after += 1
        else:
            before += 1
            if before == 3:
                job.cancel()
    assert before == 3
    assert after <= 1
    assert job.tokens <= 4  # the worker emitted at most one token past the stop
    assert job.finished.is_set() and job.error is None
    wait_idle(engine)
    engine.enqueue("still serving")
    assert engine.submit(request()).text() == "still serving"


def test_engine_cancel_of_a_running_job_stops_it():
    engine = GatedEngine()
    engine.enqueue("a b c d e f g h")
    job = engine.submit(request())
    engine.allow(2)
    pieces = iter(job)
    assert [next(pieces), next(pieces)] == ["a ", "b "]
    engine.cancel(job)
    assert list(pieces) == []  # the gated third token is dropped once stopped
    assert job.finished.wait(WAIT)
    wait_idle(engine)


def test_cancelling_a_waiting_job_removes_it_at_once_and_later_jobs_move_up():
    engine = GatedEngine()
    running = engine.submit(request("running"))
    started(running)
    second, doomed, last = (engine.submit(request(name)) for name in ("b", "doomed", "d"))
    assert [engine.position(job) for job in (second, doomed, last)] == [2, 3, 4]

    engine.cancel(doomed)
    assert doomed.finished.is_set()  # at once, while the worker is still busy
    assert doomed.text() == "" and doomed.error is None
    assert engine.position(doomed) == 0
    assert [engine.position(job) for job in (second, last)] == [2, 3]
    assert engine.status()["queue"]["waiting"] == 2

    engine.open()
    assert [job.text() for job in (running, second, last)] == ["OK."] * 3
    wait_idle(engine)
    assert asked(engine) == ["running", "b", "d"]  # the cancelled job never reached the model


class FailsMidway(FakeEngine):
    """Streams two tokens, then the scripted exception."""

    def __init__(self, failure: BaseException):
        super().__init__()
        self.failure = failure

    def _generate(self, model, job):
        self.requests.append(job.request)
        if job.request.messages[-1]["content"] == "fail":
            yield "partial "
            yield "answer "
            raise self.failure
        yield "fine"


def test_a_generation_that_raises_fails_only_its_job():
    engine = FakeEngine()
    engine.enqueue(RuntimeError("llama exploded"))
    engine.enqueue("second answer")
    failing, healthy = engine.submit(request("one")), engine.submit(request("two"))
    with pytest.raises(RuntimeError, match="llama exploded"):
        failing.text()
    assert isinstance(failing.error, RuntimeError)
    assert healthy.text() == "second answer"
    assert healthy.error is None


def test_a_failure_mid_stream_keeps_the_pieces_already_sent_and_the_worker_lives():
    engine = FailsMidway(LumaraError("out of memory", code="generation_failed"))
    job = engine.submit(request("fail"))
    pieces = []
    with pytest.raises(LumaraError) as failed:
        for piece in job:
            pieces.append(piece)
    assert pieces == ["partial ", "answer "]
    assert failed.value.code == "generation_failed"
    assert engine.submit(request("next")).text() == "fine"
    wait_idle(engine)


def test_a_model_that_fails_to_load_fails_submit_with_the_reason():
    release = threading.Event()

    def loader():
        release.wait(WAIT)
        raise LumaraError("The GGUF file at /models/x.gguf is corrupt.", code="model_failed")

    engine = Engine(loader=loader)
    early = engine.submit(request())  # accepted while the model loads
    wait_until(lambda: engine.status()["state"] == "loading", what="loading")
    release.set()
    with pytest.raises(ModelUnavailable) as in_queue:
        early.text()
    assert "corrupt" in in_queue.value.message
    assert engine.model.settle(WAIT)
    assert engine.status()["state"] == "error"

    with pytest.raises(ModelUnavailable) as refused:
        engine.submit(request())
    assert refused.value.code == "model_failed" and refused.value.status == 503
    assert "The GGUF file at /models/x.gguf is corrupt." in refused.value.message
    assert engine.status()["queue"]["waiting"] == 0


# -- fit_to_context -----------------------------------------------------------------------
def words(text: str) -> int:
    return len(text.split())


def size(messages, count=words) -> int:
    return sum(count(m["content"]) + TOKENS_PER_MESSAGE for m in messages)


SYSTEM = {"role": "system", "content": "You are a careful assistant for memories."}  # 7 words
QUESTION = {"role": "user", "content": "Memories:\n- My sister Ana lives in Lisbon.\n\n"
                                       "Question: Where does my sister live?"}


def history(pairs: int, words_each: int = 20) -> list[dict]:
    turns = []
    for i in range(pairs):
        filler = " ".join(["word"] * (words_each - 2))
        turns.append({"role": "user", "content": f"question {i} {filler}"})
        turns.append({"role": "assistant", "content": f"answer {i} {filler}"})
    return turns


def test_a_prompt_that_fits_is_unchanged():
    messages = [SYSTEM, *history(2), QUESTION]
    assert fit_to_context(messages, words, size(messages)) == messages


def test_oldest_turns_are_dropped_first_keeping_the_system_and_the_newest():
    turns = history(10)
    messages = [SYSTEM, *turns, QUESTION]
    budget = 250
    fitted = fit_to_context(messages, words, budget)
    assert size(fitted) <= budget
    assert fitted[0] == SYSTEM and fitted[-1] == QUESTION
    kept = fitted[1:-1]
    assert kept and kept == turns[len(turns) - len(kept):]  # the newest, in order
    assert kept[0]["role"] == "user"
    # No more was dropped than needed: the previous exchange would not have fitted.
    dropped = turns[:len(turns) - len(kept)]
    assert size(fitted) + size(dropped[-2:]) > budget


def test_the_kept_history_starts_on_a_user_turn():
    turns = history(10)  # 28 "tokens" a message with the per-message overhead
    messages = [SYSTEM, *turns, QUESTION]
    # Room for exactly seven history messages; the seventh newest is an answer, which
    # must go too: a history may not open with an answer to a question it does not hold.
    budget = size([SYSTEM, QUESTION]) + 7 * 28
    fitted = fit_to_context(messages, words, budget)
    assert [m["role"] for m in fitted[1:-1]] == ["user", "assistant"] * 3
    assert fitted[1:-1] == turns[-6:]


def test_without_a_system_message_the_newest_turns_are_kept():
    turns = history(5)
    messages = [*turns, QUESTION]
    fitted = fit_to_context(messages, words, size([QUESTION]) + 2 * 28)
    assert fitted == [*turns[-2:], QUESTION]


def huge_question() -> dict:
    memory = " ".join(f"detail{i}" for i in range(1200))  # about 10,000 characters
    assert len(memory) >= 10_000
    return {"role": "user", "content": f"Memories:\n- {memory}\n\nQuestion: Where does my "
                                       "sister live?"}


@pytest.mark.parametrize("budget", [40, 100, 300, 1000])
def test_an_oversize_question_is_cut_from_its_start_keeping_the_question(budget):
    last = huge_question()
    messages = [SYSTEM, *history(8, words_each=200), last]
    fitted = fit_to_context(messages, words, budget)
    assert size(fitted) <= budget
    assert [m["role"] for m in fitted] == ["system", "user"]
    assert fitted[0] == SYSTEM
    text = fitted[1]["content"]
    assert text.endswith("Question: Where does my sister live?")
    assert last["content"].endswith(text)  # the tail of the original, nothing invented
    assert len(text) < len(last["content"])
    assert messages[-1] == last  # the caller's messages are not modified


def test_an_oversize_question_fits_under_a_character_based_count_too():
    def characters(text: str) -> int:
        return len(text) // 3 + 1

    last = huge_question()
    fitted = fit_to_context([SYSTEM, *history(4), last], characters, 200)
    assert size(fitted, characters) <= 200
    assert fitted[-1]["content"].endswith("Question: Where does my sister live?")


def test_pinned_examples_outlive_history_but_not_the_question():
    examples = history(2)  # the fixed few-shot turns after the system prompt
    turns = [{"role": m["role"], "content": "old " + m["content"]} for m in history(4)]
    messages = [SYSTEM, *examples, *turns, QUESTION]
    pinned = 1 + len(examples)
    budget = size([SYSTEM, *examples, QUESTION]) + size(turns[-2:])  # one old exchange
    fitted = fit_to_context(messages, words, budget, pinned=pinned)
    assert fitted[:pinned] == [SYSTEM, *examples]  # the cached prefix is intact
    assert fitted[pinned:] == [*turns[-2:], QUESTION]
    # Too little room even for the examples: they go (the system prompt and question stay).
    tight = fit_to_context(messages, words, size([SYSTEM, QUESTION]), pinned=pinned)
    assert tight == [SYSTEM, QUESTION]


def test_wait_idle_returns_once_nothing_runs_or_waits(make_app):
    engine = GatedEngine()
    make_app(engine=engine)
    running = engine.submit(request("first"))
    started(running)
    engine.submit(request("second"))
    assert not engine.wait_idle(0.05)
    engine.open()
    assert engine.wait_idle(WAIT)
    assert engine.status()["queue"] == {"waiting": 0, "running": False, "max": 16}
