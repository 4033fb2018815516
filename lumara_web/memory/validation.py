"""Turn untrusted request data into checked values, or raise ValidationError saying what
was wrong and with which value. Nothing here touches the database."""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass
from typing import Any, Mapping

from ..config import MEMORY_TYPES
from ..errors import ValidationError
from ..storage.review_store import CONTRADICTION_STATUSES, RESOLUTIONS, SUGGESTION_STATUSES

# Metadata is for small machine-readable notes (ids, links), not a second content field.
MAX_METADATA_BYTES = 4096
# Deeper nesting is no note; a few hundred levels overflow the recursion that turns a
# stored memory back into JSON, so such a memory could never be read again.
MAX_METADATA_DEPTH = 32
MAX_TITLE_CHARS = 200


@dataclass(frozen=True)
class NewMemory:
    content: str
    type: str
    tags: list[str]
    metadata: dict


@dataclass(frozen=True)
class MemoryPatch:
    content: str | None = None
    type: str | None = None
    tags: list[str] | None = None


@dataclass(frozen=True)
class SearchQuery:
    text: str
    k: int
    threshold: float
    type: str | None


@dataclass(frozen=True)
class ListQuery:
    type: str | None
    tag: str | None
    limit: int
    offset: int


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def parse_json_object(raw: bytes) -> dict:
    """A request body that must be one JSON object (UTF-8, no NaN/Infinity)."""
    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValidationError(f"The request body is not valid JSON: {exc}",
                              code="invalid_json") from None
    if not isinstance(body, dict):
        raise ValidationError(f"The request body must be a JSON object, not "
                              f"{_json_type(body)}.", code="invalid_body")
    return body


def parse_new_memory(body: Mapping[str, Any], settings: Mapping[str, Any]) -> NewMemory:
    reject_unknown_fields(body, {"content", "type", "tags", "metadata"})
    if "content" not in body:
        raise ValidationError("content is required.", code="empty_content")
    return NewMemory(
        content=parse_text(body["content"], settings["max_content_chars"]),
        type=_memory_type(body.get("type", "knowledge")),
        tags=_tags(body.get("tags", []), settings),
        metadata=_metadata(body.get("metadata", {})))


def parse_memory_patch(body: Mapping[str, Any], settings: Mapping[str, Any]) -> MemoryPatch:
    reject_unknown_fields(body, {"content", "type", "tags"})
    if not body:
        raise ValidationError("Nothing to change: send content, type or tags.",
                              code="empty_patch")
    return _memory_patch(body, settings)


# A version number is a SQLite integer: anything larger cannot exist and cannot be bound.
MAX_VERSION = 2**63 - 1


def parse_restore_request(body: Mapping[str, Any]) -> int:
    """The version number to restore: `{"version": n}`, n a whole number from 1."""
    reject_unknown_fields(body, {"version"})
    if "version" not in body:
        raise ValidationError("version is required: the number of the version to restore "
                              "(see the memory's history).", code="invalid_version")
    value = body["version"]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"version must be a whole number, not {_json_type(value)}.",
                              code="invalid_version")
    if not 1 <= value <= MAX_VERSION:
        raise ValidationError(f"version {value} is out of range: versions are numbered from 1.",
                              code="invalid_version")
    return value


def parse_suggestion_edits(body: Mapping[str, Any], settings: Mapping[str, Any]) -> MemoryPatch:
    """Changes to a suggestion before it is saved; an empty body means none."""
    reject_unknown_fields(body, {"content", "type", "tags"})
    return _memory_patch(body, settings)


def parse_conversation_patch(body: Mapping[str, Any]) -> str:
    """The new title (the only field a conversation has to change)."""
    reject_unknown_fields(body, {"title"})
    if "title" not in body:
        raise ValidationError("title is required.", code="invalid_title")
    value = body["title"]
    if not isinstance(value, str):
        raise ValidationError(f"title must be a string, not {_json_type(value)}.",
                              code="invalid_title")
    title = value.strip()
    if not title:
        raise ValidationError("title is empty.", code="invalid_title")
    if len(title) > MAX_TITLE_CHARS:
        raise ValidationError(f"title is {len(title):,} characters; the limit is "
                              f"{MAX_TITLE_CHARS}.", code="invalid_title")
    _require_clean_text(title, "title", code="invalid_title")
    return title


def parse_page(args: Mapping[str, str], settings: Mapping[str, Any]) -> Page:
    return Page(limit=_int_param(args, "limit", 50, 1, settings["max_page_size"]),
                offset=_int_param(args, "offset", 0, 0, 2**62))


def parse_suggestion_status(args: Mapping[str, str]) -> str | None:
    """pending (the default), accepted, dismissed, or all (None)."""
    return _status_filter(args, SUGGESTION_STATUSES)


def parse_contradiction_status(args: Mapping[str, str]) -> str | None:
    """pending (the default), resolved, or all (None)."""
    return _status_filter(args, CONTRADICTION_STATUSES)


def parse_resolution(body: Mapping[str, Any]) -> str:
    reject_unknown_fields(body, {"resolution"})
    if "resolution" not in body:
        raise ValidationError(f"resolution is required: one of {', '.join(RESOLUTIONS)}.",
                              code="invalid_resolution")
    value = body["resolution"]
    if value not in RESOLUTIONS:  # also refuses non-strings
        shown = repr(value) if isinstance(value, str) else _json_type(value)
        raise ValidationError(f"resolution {shown[:60]} is not one of "
                              f"{', '.join(RESOLUTIONS)}.", code="invalid_resolution")
    return value


def parse_search_query(args: Mapping[str, str], settings: Mapping[str, Any]) -> SearchQuery:
    text = args.get("q", "")
    if not text.strip():
        raise ValidationError("q is required: the text to search for.", code="missing_query")
    return SearchQuery(
        text=parse_text(text, settings["max_content_chars"], field="q"),
        k=_int_param(args, "k", settings["search_k"], 1, settings["max_search_k"]),
        threshold=_threshold_param(args, settings["search_threshold"]),
        type=_type_filter(args.get("type")))


def parse_list_query(args: Mapping[str, str], settings: Mapping[str, Any]) -> ListQuery:
    tag = args.get("tag", "").strip()
    return ListQuery(
        type=_type_filter(args.get("type")),
        tag=_tags([tag], settings)[0] if tag else None,
        limit=_int_param(args, "limit", 50, 1, settings["max_page_size"]),
        offset=_int_param(args, "offset", 0, 0, 2**62))


# -- fields -----------------------------------------------------------------------------
def _memory_patch(body: Mapping[str, Any], settings: Mapping[str, Any]) -> MemoryPatch:
    return MemoryPatch(
        content=(parse_text(body["content"], settings["max_content_chars"])
                 if "content" in body else None),
        type=_memory_type(body["type"]) if "type" in body else None,
        tags=_tags(body["tags"], settings) if "tags" in body else None)


def reject_unknown_fields(body: Mapping[str, Any], allowed: set[str]) -> None:
    """Refuse the fields of `body` not in `allowed`: a misspelt one ("Content") would
    otherwise be ignored without a word."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationError(f"Unknown field(s): {', '.join(unknown)}. Allowed: "
                              f"{', '.join(sorted(allowed))}.", code="unknown_field")


def parse_text(value: Any, max_chars: int, *, field: str = "content") -> str:
    """A required text field: a string, stripped, not empty, at most `max_chars`, storable."""
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string, not {_json_type(value)}.",
                              code="invalid_content")
    text = value.strip().strip(INVISIBLE).strip()
    if not any(_visible(character) for character in text):
        raise ValidationError(f"{field} is empty: write something to remember.",
                              code="empty_content")
    if len(text) > max_chars:
        raise ValidationError(f"{field} is {len(text):,} characters; the limit is "
                              f"{max_chars:,}.", code="content_too_long")
    _require_clean_text(text, field, code="invalid_content")
    return text


# Characters that take no room on screen (zero-width spaces and joiners, the word joiner,
# the byte-order mark): trimmed from the ends, and a text of nothing else is empty.
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"


def _visible(character: str) -> bool:
    """Neither white space nor an invisible format character (Unicode category Cf)."""
    return not character.isspace() and unicodedata.category(character) != "Cf"


def _require_clean_text(text: str, field: str, *, code: str) -> None:
    # JSON can carry lone surrogates ("\ud800") and NUL, which SQLite cannot store as text.
    if "\x00" in text:
        raise ValidationError(f"{field} contains a NUL character.", code=code)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{field} contains an unpaired surrogate; send valid Unicode.",
                              code=code) from None


def _memory_type(value: Any) -> str:
    if value not in MEMORY_TYPES:
        raise ValidationError(f"type {value!r} is not one of {', '.join(MEMORY_TYPES)}.",
                              code="invalid_type")
    return value


def _type_filter(value: str | None) -> str | None:
    if value in (None, "", "all"):
        return None
    return _memory_type(value)


def _tags(value: Any, settings: Mapping[str, Any]) -> list[str]:
    max_tags, max_chars = settings["max_tags"], settings["max_tag_chars"]
    if not isinstance(value, list):
        raise ValidationError(f"tags must be a list of strings, not {_json_type(value)}.",
                              code="invalid_tags")
    tags: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ValidationError(f"Each tag must be a string; got {_json_type(item)}.",
                                  code="invalid_tags")
        tag = " ".join(item.split()).lower()  # tags match case- and spacing-insensitively
        if not tag:
            raise ValidationError("Tags must not be empty.", code="invalid_tags")
        if len(tag) > max_chars:
            raise ValidationError(f"The tag {tag[:20]!r}… is {len(tag)} characters; the limit "
                                  f"is {max_chars}.", code="invalid_tags")
        _require_clean_text(tag, "A tag", code="invalid_tags")
        if tag not in tags:
            tags.append(tag)
    if len(tags) > max_tags:
        raise ValidationError(f"{len(tags)} tags given; the limit is {max_tags}.",
                              code="invalid_tags")
    return tags


def _metadata(value: Any) -> dict:
    if not isinstance(value, dict):
        raise ValidationError(f"metadata must be an object, not {_json_type(value)}.",
                              code="invalid_metadata")
    depth = _nesting_depth(value)
    if depth > MAX_METADATA_DEPTH:
        raise ValidationError(f"metadata is nested {depth} levels deep; the limit is "
                              f"{MAX_METADATA_DEPTH}.", code="invalid_metadata")
    try:
        size = len(json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8"))
    except (ValueError, UnicodeEncodeError):
        raise ValidationError("metadata must hold only valid JSON values and Unicode.",
                              code="invalid_metadata") from None
    if size > MAX_METADATA_BYTES:
        raise ValidationError(f"metadata is {size:,} bytes as JSON; the limit is "
                              f"{MAX_METADATA_BYTES:,}.", code="invalid_metadata")
    return value


def _nesting_depth(value: Any) -> int:
    """How many objects/lists deep `value` goes, without recursion (input is untrusted)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1)
                         for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _int_param(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = args.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"{name}={raw[:40]!r} is not a whole number.",
                              code=f"invalid_{name}") from None
    if not low <= value <= high:
        raise ValidationError(f"{name}={value} is out of range; use {low} to {high}.",
                              code=f"invalid_{name}")
    return value


def _status_filter(args: Mapping[str, str], statuses: tuple[str, ...]) -> str | None:
    raw = args.get("status", "")
    if raw == "":
        return "pending"
    if raw == "all":
        return None
    if raw not in statuses:
        raise ValidationError(f"status={raw[:40]!r} is not one of {', '.join(statuses)}, all.",
                              code="invalid_status")
    return raw


def _threshold_param(args: Mapping[str, str], default: float) -> float:
    raw = args.get("threshold", "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not -1.0 <= value <= 1.0:  # also false for NaN
        raise ValidationError(f"threshold={raw[:40]!r} must be a number from -1 to 1.",
                              code="invalid_threshold")
    return value


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)
