"""Test doubles that are real objects: a deterministic embedder that records its calls."""

from __future__ import annotations

import hashlib
import json
import re
import threading

import numpy as np

from lumara_web.inference.engine import Engine

DIMENSIONS = 384


class FakeEmbedder:
    """Bag-of-words vectors: each distinct word adds a fixed random direction, then the sum
    is normalized. Texts with the same words are identical (cosine 1); two texts of n words
    that share m have cosine about m/n — so tests can aim at a similarity band."""

    model_id = "fake/bag-of-words"

    def __init__(self, dimensions: int = DIMENSIONS, delay: float = 0.0):
        self.dimensions = dimensions
        self.delay = delay  # seconds per call, to widen race windows in concurrency tests
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()

    @property
    def texts_embedded(self) -> list[str]:
        return [text for call in self.calls for text in call]

    def embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            self.calls.append(list(texts))
        if self.delay:
            threading.Event().wait(self.delay)
        return np.stack([self.vector(text) for text in texts]).astype(np.float32)

    def vector(self, text: str) -> np.ndarray:
        total = np.zeros(self.dimensions)
        for word in set(re.findall(r"\w+", text.lower())) or {""}:
            seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
            total += np.random.default_rng(seed).standard_normal(self.dimensions)
        return (total / np.linalg.norm(total)).astype(np.float32)


class OtherModel(FakeEmbedder):
    """A different model: the same words map to other directions."""

    model_id = "fake/other-model"

    def vector(self, text: str) -> np.ndarray:
        return super().vector("other " + text)


class FakeEngine(Engine):
    """The real queue and worker with scripted generation: `enqueue(reply)` queues the next
    reply (a str is streamed word by word; a dict is streamed as JSON), per request purpose.
    Unscripted requests get `default_reply`. Every request is kept in `requests`."""

    def __init__(self, token_delay: float = 0.0, max_queue: int = 16):
        super().__init__(loader=lambda: "fake model", max_queue=max_queue)
        self.token_delay = token_delay
        self.default_reply = "OK."
        self.requests: list = []
        self._replies: dict[str, list] = {}

    def enqueue(self, reply, purpose: str = "chat") -> None:
        self._replies.setdefault(purpose, []).append(reply)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _generate(self, model, job):
        self.requests.append(job.request)
        scripted = self._replies.get(job.request.purpose) or []
        reply = scripted.pop(0) if scripted else self.default_reply
        if isinstance(reply, BaseException):
            raise reply
        text = json.dumps(reply) if isinstance(reply, dict) else reply
        for stop in job.request.stop:  # as llama.cpp: the text ends before a stop string
            text = text.split(stop)[0]
        pieces = re.findall(r"\S+\s*", text)  # a word is a token here
        job.finish_reason = "length" if len(pieces) > job.request.max_tokens else "stop"
        for piece in pieces[:job.request.max_tokens]:
            if self.token_delay:
                threading.Event().wait(self.token_delay)
            yield piece
