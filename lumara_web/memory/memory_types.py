"""Guess a memory's type (knowledge, experience, method) from its embedding.

Each type has a handful of prototype sentences; a text takes the type whose prototypes it
is most similar to on average. The small default chat model, asked for a type under a JSON
schema, copied whatever its example said, so the embedding (already computed for the
memory) decides instead. It is a first guess: the user can change the type.
The prototypes are generic on purpose, none taken from evaluation data.
"""

from __future__ import annotations

import threading

import numpy as np

from ..inference.embeddings import EmbeddingService

PROTOTYPES: dict[str, tuple[str, ...]] = {
    "knowledge": (
        "My brother's name is Tom.", "The gym closes at 10 pm on weekdays.",
        "My car is a blue Toyota.", "I am vegetarian.",
        "Our landlord's phone number is on the fridge.",
        "My daughter's school starts at 8:30.", "I prefer window seats.",
        "My favourite band is Radiohead."),
    "experience": (
        "Yesterday I got lost hiking near the lake.",
        "I felt nervous before my job interview last week.",
        "We visited Rome in 2019 and loved it.", "I burned the rice the first time I cooked it.",
        "Last summer I learned to surf in Portugal.", "I cried at the end of that film.",
        "My flight was delayed by six hours.", "I finished my first marathon in 2021."),
    "method": (
        "To fix the wobbly table I put folded cardboard under the short leg.",
        "I always back up my laptop every Sunday night.",
        "The trick to crispy potatoes is to parboil them first.",
        "When I can't sleep I read a paper book.",
        "I clean the coffee machine with vinegar once a month.",
        "My routine for packing is to lay everything out the night before.",
        "To remember names I repeat them in my head.",
        "I water the plants every morning before work."),
}


class TypeClassifier:
    def __init__(self, embeddings: EmbeddingService):
        self.embeddings = embeddings
        self._prototypes: dict[str, np.ndarray] | None = None
        self._lock = threading.Lock()

    def classify(self, text: str) -> str:
        vector = self.embeddings.embed(text)
        scores = {kind: float(np.mean(matrix @ vector))
                  for kind, matrix in self._prototype_vectors().items()}
        return max(scores, key=scores.get)

    def _prototype_vectors(self) -> dict[str, np.ndarray]:
        with self._lock:  # embedded once per process (and cached on disk after that)
            if self._prototypes is None:
                self._prototypes = {kind: self.embeddings.embed_many(list(sentences))
                                    for kind, sentences in PROTOTYPES.items()}
            return self._prototypes
