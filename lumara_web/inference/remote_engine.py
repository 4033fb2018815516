"""The chat model on an existing OpenAI-compatible server (`--engine-url`): llama.cpp's
llama-server, Ollama, vLLM or llama-cpp-python's server, through the `openai` package.

Only chat generation moves out of the process; embeddings stay local and still run on the
engine's worker thread (`run_task`). The queue is the same: one job streams at a time, so a
small server is never asked for more than one answer at once.
"""

from __future__ import annotations

import logging
from typing import Any, Iterator

from ..config import _http_url
from ..errors import ConfigError, LumaraError
from .engine import CONTEXT_SAFETY_TOKENS, Engine, Job, fit_to_context

log = logging.getLogger(__name__)

# The server's tokenizer is remote: estimate instead of asking it for every trim. English
# runs ~4 characters a token for BPE vocabularies; 3 overestimates, so prompts stay inside
# the server's context rather than being cut by it.
CHARS_PER_TOKEN = 3
# Seconds to connect and to wait between two streamed chunks; loading uses CHECK_TIMEOUT so
# a wrong URL is reported at once instead of hanging start-up.
REQUEST_TIMEOUT = 120.0
CHECK_TIMEOUT = 5.0

# JSON-constrained output, most standard first: OpenAI's `json_schema` (llama-server, vLLM,
# Ollama); llama-cpp-python's server accepts only `json_object` with a `schema`; last, no
# constraint at all (the extractor and judge validate the JSON themselves).
RESPONSE_FORMATS = ("json_schema", "json_object", None)


def validate_engine_url(url: str) -> str:
    """The base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8080/v1."""
    try:
        return _http_url(url)
    except ValueError as exc:
        raise ConfigError(f"--engine-url: {exc}. Give the server's OpenAI API base.") from None


def response_format(kind: str | None, schema: dict) -> dict | None:
    if kind == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "lumara", "schema": schema}}
    if kind == "json_object":
        return {"type": "json_object", "schema": schema}
    return None


class RemoteEngine(Engine):
    """Streams answers from an OpenAI-compatible server; mirrors LlamaEngine's interface."""

    def __init__(self, *, url: str, model: str | None = None, api_key: str | None = None,
                 n_ctx: int = 4096, max_queue: int = 16,
                 timeout: float = REQUEST_TIMEOUT, check_timeout: float = CHECK_TIMEOUT):
        self.url = validate_engine_url(url)
        self.n_ctx = n_ctx  # the budget fit_to_context trims to; the server's may differ
        self.api_key = api_key or "none"  # local servers ignore it; the client requires one
        self.timeout = timeout
        self.check_timeout = check_timeout
        self._configured_model = model
        self.remote_model: str | None = None
        self._format_index = 0  # into RESPONSE_FORMATS: the first the server accepted
        super().__init__(loader=self._load, max_queue=max_queue)

    @property
    def model_name(self) -> str | None:
        return self.remote_model

    def status(self) -> dict:
        return {**super().status(), "model": self.model_name, "remote": self.url,
                "n_ctx": self.n_ctx}

    def _client(self, timeout: float) -> Any:
        from openai import OpenAI

        # No retries: the queue's caller sees a failure at once and the worker moves on.
        return OpenAI(base_url=self.url, api_key=self.api_key, timeout=timeout,
                      max_retries=0)

    def _load(self) -> Any:
        import openai

        try:
            listed = [model.id for model in self._client(self.check_timeout).models.list()]
        except openai.APIError as exc:
            raise LumaraError(
                f"The chat server at {self.url} did not answer GET /models ({exc}). Start "
                "it, check --engine-url (its OpenAI API base, usually ending in /v1), or "
                "leave --engine-url out to use the built-in model.",
                code="model_failed") from None
        if self._configured_model:
            if listed and self._configured_model not in listed:
                log.warning("%s does not list model %r (it lists %s); asking for it anyway",
                            self.url, self._configured_model, ", ".join(listed))
            self.remote_model = self._configured_model
        elif listed:
            self.remote_model = listed[0]
        else:
            raise LumaraError(f"The chat server at {self.url} lists no models; name one "
                              "with --engine-model.", code="model_failed")
        return self._client(self.timeout)

    def count_tokens(self, text: str) -> int:
        """An estimate (see CHARS_PER_TOKEN): +1 so that no non-empty text counts as 0."""
        return len(text) // CHARS_PER_TOKEN + 1

    def _generate(self, client: Any, job: Job) -> Iterator[str]:
        request = job.request
        budget = self.n_ctx - request.max_tokens - CONTEXT_SAFETY_TOKENS
        messages = fit_to_context(request.messages, self.count_tokens, budget, request.pinned)
        stream = self._open_stream(client, messages, request)
        try:
            for chunk in stream:
                if not chunk.choices:
                    continue
                job.finish_reason = chunk.choices[0].finish_reason or job.finish_reason
                if chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        finally:
            stream.close()  # a stopped job ends the HTTP response, and the server's work

    def _open_stream(self, client: Any, messages: list[dict], request: Any) -> Any:
        import openai

        options = {"model": self.remote_model, "messages": messages, "stream": True,
                   "max_tokens": request.max_tokens, "temperature": request.temperature,
                   **({"stop": list(request.stop)} if request.stop else {})}
        if request.json_schema is None:
            return client.chat.completions.create(**options)
        while True:
            kind = RESPONSE_FORMATS[self._format_index]
            fmt = response_format(kind, request.json_schema)
            try:
                return client.chat.completions.create(
                    **options, **({"response_format": fmt} if fmt else {}))
            except openai.APIStatusError as exc:
                # llama-cpp-python's server answers an unknown format with a 500 that names
                # response_format; the others with 400 or 422.
                refused = exc.status_code in (400, 422) or "response_format" in str(exc)
                if kind is None or not refused:
                    raise
                self._format_index += 1
                log.warning("%s refused response_format %s (%s); trying %s. Without a "
                            "schema the answer is validated as JSON afterwards.",
                            self.url, kind, exc.status_code,
                            RESPONSE_FORMATS[self._format_index] or "no constraint")
