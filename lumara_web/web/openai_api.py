"""An OpenAI-compatible API under /v1, so tools written for OpenAI's client can use Lumara:
the model list, embeddings, and chat completions grounded on the user's memories.

Chat completions differ from the chat page in two documented ways:
- they store nothing: no conversation, no extracted memory (the client keeps its history);
- system messages from the client are dropped: Lumara keeps its own system prompt and fixed
  examples, which the small default model needs to answer from memories, and which stay the
  prefix llama.cpp has already read (see prompts.py).

Errors come in OpenAI's shape, {"error": {"message", "type", "code", "param"}}, with the
statuses OpenAI's client maps to its exception classes (400 BadRequestError, 404
NotFoundError, 429 RateLimitError, 503 InternalServerError).
"""

from __future__ import annotations

import base64
import json
import math
import time
import uuid
from typing import Any, Iterator

from flask import Blueprint, Response, jsonify
from werkzeug.exceptions import HTTPException

from ..chat import prompts
from ..chat.service import receipt_item
from ..errors import LumaraError, ValidationError
from ..inference.engine import GenerationRequest, Job
from ..memory import validation
from .context import current_services, get_db, json_body

bp = Blueprint("openai_api", __name__, url_prefix="/v1")

DEFAULT_CHAT_MODEL = "lumara"
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
ROLES = ("system", "user", "assistant")
# OpenAI accepts temperatures from 0 to 2; the same range here.
MAX_TEMPERATURE = 2.0
# Error types OpenAI's API returns, by status (clients and logs read them).
ERROR_TYPES = {400: "invalid_request_error", 404: "not_found_error", 413: "invalid_request_error",
               415: "invalid_request_error", 429: "rate_limit_error",
               503: "service_unavailable_error"}


class OpenAIRequestError(ValidationError):
    """A 400 that names the request field at fault (OpenAI's `param`)."""

    def __init__(self, message: str, param: str | None, *, code: str = "invalid_value"):
        super().__init__(message, code=code)
        self.param = param


def _error_response(status: int, message: str, code: str, param: str | None = None):
    response = jsonify({"error": {"message": message,
                                  "type": ERROR_TYPES.get(status, "server_error"),
                                  "code": code, "param": param}})
    response.status_code = status
    return response


@bp.errorhandler(LumaraError)
def lumara_error(error: LumaraError):
    # The engine says 503 when its queue is full; OpenAI's clients expect 429 for "retry later".
    status = 429 if error.code == "busy" else error.status
    return _error_response(status, error.message, error.code, getattr(error, "param", None))


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException):
    code = (error.name or "error").lower().replace(" ", "_")
    return _error_response(error.code or 500, error.description or code, code)


# -- models -------------------------------------------------------------------------------
def chat_model_name() -> str:
    return getattr(current_services().engine, "model_name", None) or DEFAULT_CHAT_MODEL


def embedding_model_name() -> str:
    services = current_services()
    return (services.embeddings.model_id or services.settings.get("embedding_model")
            or DEFAULT_EMBEDDING_MODEL)


@bp.get("/models")
def list_models():
    return {"object": "list",
            "data": [{"id": str(name), "object": "model", "created": 0, "owned_by": "lumara"}
                     for name in (chat_model_name(), embedding_model_name())]}


# -- embeddings ---------------------------------------------------------------------------
@bp.post("/embeddings")
def create_embeddings():
    body = json_body()
    settings = current_services().settings
    texts = _embedding_input(body.get("input"), settings)
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise OpenAIRequestError(f"encoding_format must be 'float' or 'base64', not "
                                 f"{encoding!r}.", "encoding_format")
    vectors = current_services().embeddings.embed_many(texts)
    data = [{"object": "embedding", "index": index,
             # OpenAI's Python client asks for base64 (little-endian float32) by default.
             "embedding": base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
             if encoding == "base64" else [float(value) for value in vector]}
            for index, vector in enumerate(vectors)]
    # Word counts: the embedding model's tokenizer is not exposed here; usage is an estimate.
    tokens = sum(len(text.split()) for text in texts)
    return {"object": "list", "data": data, "model": embedding_model_name(),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _embedding_input(value: Any, settings: dict) -> list[str]:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts:
        raise OpenAIRequestError("input must be a string or a non-empty list of strings.",
                                 "input")
    # One model batch per request: a larger one would hold the inference thread (which also
    # streams chat answers) for several batches in a row.
    limit = settings["embedding_batch_size"]
    if len(texts) > limit:
        raise OpenAIRequestError(f"input has {len(texts)} texts; the limit is {limit} per "
                                 "request.", "input")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise OpenAIRequestError(f"input[{index}] must be a string (token arrays are not "
                                     f"supported), not {type(text).__name__}.", "input")
        try:
            validation.parse_text(text, settings["max_content_chars"], field=f"input[{index}]")
        except ValidationError as invalid:
            raise OpenAIRequestError(invalid.message, "input", code=invalid.code) from None
    return texts


# -- chat completions ---------------------------------------------------------------------
@bp.post("/chat/completions")
def chat_completions():
    body = json_body()
    services = current_services()
    settings = services.settings
    history, question = _messages(body.get("messages"), settings)
    stream = _flag(body, "stream", False)
    max_tokens = _max_tokens(body, settings["answer_max_tokens"])
    temperature = _temperature(body.get("temperature"))
    options = body.get("lumara") or {}
    if not isinstance(options, dict):
        raise OpenAIRequestError("lumara must be an object such as {\"memories\": false}.",
                                 "lumara")
    grounded = _flag(options, "memories", True, param="lumara.memories")

    hits = []
    if grounded:
        vector = services.embeddings.embed(question)
        hits = services.memories.recall(get_db(), question, vector,
                                        k=settings["chat_memory_k"],
                                        threshold=settings["chat_memory_threshold"],
                                        judged=True)
        messages = prompts.answer_messages(history, question,
                                           [hit.memory.content for hit in hits])
        pinned = prompts.PINNED_MESSAGES
    else:
        messages = [{"role": "system", "content": prompts.SYSTEM_PROMPT}, *history,
                    {"role": "user", "content": question}]
        pinned = 1
    job = services.engine.submit(GenerationRequest(
        messages, max_tokens=max_tokens, temperature=temperature, purpose="chat",
        pinned=pinned))
    completion = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()),
                  "model": chat_model_name()}
    receipt = {"memories": [_receipt(hit) for hit in hits]}
    if stream:
        return Response(_stream(services.engine, job, completion, receipt),
                        mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})
    try:
        text = job.text()
    except LumaraError:
        raise  # busy, model unavailable: answered by lumara_error
    except Exception as failure:  # llama.cpp failed mid-answer
        raise LumaraError(f"The model failed while answering ({type(failure).__name__}).",
                          code="generation_failed") from None
    return {**completion, "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": _finish_reason(job)}],
            "usage": _usage(job), "lumara": receipt}


def _stream(engine: Any, job: Job, completion: dict, receipt: dict) -> Iterator[str]:
    """Server-sent events. When the client goes away, werkzeug's next write fails and closes
    this generator: `finally` stops the job at its next token."""
    def chunk(delta: dict, finish_reason: str | None = None, **extra) -> str:
        body = {**completion, "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                **extra}
        return f"data: {json.dumps(body)}\n\n"

    try:
        yield chunk({"role": "assistant", "content": ""}, lumara=receipt)
        try:
            for piece in job:
                yield chunk({"content": piece})
        except Exception as failure:  # headers are sent: the error goes in the stream
            error = failure if isinstance(failure, LumaraError) else LumaraError(
                f"The model failed while answering ({type(failure).__name__}).",
                code="generation_failed")
            yield f"data: {json.dumps(_error_body(error))}\n\n"
            return
        yield chunk({}, _finish_reason(job), usage=_usage(job))
        yield "data: [DONE]\n\n"
    finally:
        engine.cancel(job)  # no-op for a finished job


def _error_body(error: LumaraError) -> dict:
    return {"error": {"message": error.message, "type": ERROR_TYPES.get(error.status,
                                                                        "server_error"),
                      "code": error.code, "param": None}}


def _receipt(hit) -> dict:
    item = receipt_item(hit)
    return {"id": item["id"], "content": item["content"], "similarity": item["similarity"]}


def _finish_reason(job: Job) -> str:
    return "length" if job.tokens >= job.request.max_tokens else "stop"


def _usage(job: Job) -> dict:
    # Prompt tokens are counted by llama.cpp only where it reports them; 0 otherwise.
    prompt_tokens = job.prompt_tokens or 0
    return {"prompt_tokens": prompt_tokens, "completion_tokens": job.tokens,
            "total_tokens": prompt_tokens + job.tokens}


def _messages(value: Any, settings: dict) -> tuple[list[dict], str]:
    """(history, question): the client's earlier user and assistant turns, most recent
    `chat_history_messages` of them, and the last message, which must be the user's."""
    if not isinstance(value, list) or not value:
        raise OpenAIRequestError("messages must be a non-empty list of {role, content} "
                                 "objects.", "messages")
    turns = []
    for index, message in enumerate(value):
        param = f"messages[{index}]"
        if not isinstance(message, dict):
            raise OpenAIRequestError(f"{param} must be an object with role and content.", param)
        role = message.get("role")
        if role not in ROLES:
            raise OpenAIRequestError(f"{param}.role must be one of {', '.join(ROLES)}, not "
                                     f"{role!r}.", f"{param}.role")
        content = _content(message.get("content"), f"{param}.content", settings)
        if role != "system":  # dropped: see the module's docstring
            turns.append({"role": role, "content": content})
    if not turns or turns[-1]["role"] != "user":
        raise OpenAIRequestError("The last message must be the user's (role 'user').",
                                 "messages")
    limit = settings["chat_history_messages"]
    history = turns[:-1][-limit:] if limit else []
    return history, turns[-1]["content"]


def _content(value: Any, param: str, settings: dict) -> str:
    if isinstance(value, list):  # content parts: only text ones are understood
        if not all(isinstance(part, dict) and part.get("type") == "text"
                   and isinstance(part.get("text"), str) for part in value):
            raise OpenAIRequestError(f"{param}: only text parts ({{\"type\": \"text\", "
                                     "\"text\": ...}) are supported.", param)
        value = "\n".join(part["text"] for part in value)
    if not isinstance(value, str):
        raise OpenAIRequestError(f"{param} must be a string.", param)
    try:
        return validation.parse_text(value, settings["max_message_chars"], field=param)
    except ValidationError as invalid:
        raise OpenAIRequestError(invalid.message, param, code=invalid.code) from None


def _flag(body: dict, name: str, default: bool, *, param: str | None = None) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise OpenAIRequestError(f"{param or name} must be true or false.", param or name)
    return value


def _max_tokens(body: dict, cap: int) -> int:
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None \
        else "max_tokens"
    value = body.get(name)
    if value is None:
        return cap
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OpenAIRequestError(f"{name} must be a positive whole number.", name)
    return min(value, cap)  # capped by answer_max_tokens: one answer must not hold the model


def _temperature(value: Any) -> float:
    if value is None:
        return 0.0  # greedy: the small default model rambles when sampled
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or not 0 <= value <= MAX_TEMPERATURE:
        raise OpenAIRequestError(f"temperature must be a number from 0 to {MAX_TEMPERATURE:g}.",
                                 "temperature")
    return float(value)
