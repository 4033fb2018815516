"""Export every memory to one JSON (or Markdown) document, and import such a document back:
validated whole first, then embedded and checked without a lock, and written in one
transaction without doubling what is already there. Plain Python: takes a connection and
services, knows no Flask."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

import numpy as np

from ..config import MEMORY_TYPES
from ..errors import ValidationError
from ..inference.embeddings import EmbeddingService
from ..search import retrieval
from ..search.vector_index import VectorIndex
from ..storage import meta_store, store
from ..storage.db import transaction
from ..storage.migrations import EMBEDDING_DIMENSIONS
from ..storage.store import VERSION_CHANGES, Memory, MemoryVersion
from . import findings as insights
from . import pair_judge
from .reembed import BATCH
from .validation import NewMemory, parse_new_memory, parse_text, reject_unknown_fields

FORMAT = "lumara-export"
VERSION = 1
# The import body may be far larger than an ordinary request (1 MB): a memory holds up to
# 10,000 characters (60 KB as JSON at worst) and a 384-d vector takes ~8.7 KB as JSON text.
# 100,000 typical memories (~50 characters) export to ~22 MB without vectors, so 64 MB carries
# them with room for longer ones, or ~7,000 memories with vectors, while parsing it (Python
# objects take ~10x the text) stays well under a gigabyte on a personal machine.
MAX_IMPORT_BYTES = 64_000_000
# The import runs in the background (import_job.py), so its length no longer bounds the
# count; memory does: the job holds the file's memories and their vectors (~1.5 KB each)
# and compares the file with itself in tiles (near_earlier), n²/2 cosines.
MAX_IMPORT_MEMORIES = 100_000
MAX_SOURCE_CHARS = 50  # "api", "chat", "import", "review": short labels, not text
IMPORT_SOURCE = "import"
PAGE = 500  # memories read per query while exporting
# Each export format: its media type and its file name's extension.
EXPORT_FORMATS = {"json": ("application/json", "json"),
                  "markdown": ("text/markdown; charset=utf-8", "md")}
_FLOAT32_MAX = float(np.finfo(np.float32).max)

_DOCUMENT_FIELDS = {"format", "version", "exported_at", "embedding_model", "dimensions",
                    "memories"}
_MEMORY_FIELDS = {"content", "type", "tags", "metadata", "source", "created_at", "updated_at",
                  "embedding", "versions"}
_VERSION_FIELDS = {"version", "content", "type", "tags", "metadata", "replaced_at", "change"}


@dataclass(frozen=True)
class ImportedMemory:
    new: NewMemory
    source: str
    created_at: str | None
    updated_at: str | None
    embedding: np.ndarray | None
    versions: tuple[MemoryVersion, ...] = ()  # its earlier versions (exported with versions=1)


@dataclass(frozen=True)
class ImportDocument:
    embedding_model: str | None
    dimensions: int | None
    memories: list[ImportedMemory]


@dataclass(frozen=True)
class ImportResult:
    imported: int
    skipped_duplicates: list[dict] = field(default_factory=list)
    reembedded: bool = False

    def to_dict(self) -> dict:
        return {"imported": self.imported, "skipped_duplicates": self.skipped_duplicates,
                "reembedded": self.reembedded}


# -- export -------------------------------------------------------------------------------
def all_memories(conn: Any) -> list[Memory]:
    """Every memory, oldest first (an import then adds them in the order they were made)."""
    memories: list[Memory] = []
    offset = 0
    while True:
        page, total = store.list_memories(conn, limit=PAGE, offset=offset)
        memories.extend(page)
        offset += len(page)
        if not page or offset >= total:
            break
    memories.reverse()
    return memories


def build_export(conn: Any, *, model_id: str | None, include_vectors: bool = False,
                 include_versions: bool = False, exported_at: str | None = None) -> dict:
    """The export document (see docs/API.md); vectors and earlier versions only when asked
    for (a file without them still imports: both fields are optional). `model_id` is the
    running model; the document names it only if the database records it as the maker of
    every stored vector — during an unfinished re-embed they are a mix, and a null model
    makes an import embed them again rather than trust them."""
    # Memories, vectors and versions from one committed state.
    with store.read_snapshot(conn):
        if meta_store.get_value(conn, meta_store.VECTORS_MODEL) != model_id:
            model_id = None
        memories = all_memories(conn)
        vectors: dict[int, list[float]] = {}
        if include_vectors:
            ids, blobs, _ = store.memory_vector_states(conn, [m.id for m in memories])
            vectors = {memory_id: store.blob_to_vector(blob).tolist()
                       for memory_id, blob in zip(ids, blobs)}
        versions = ({memory.id: store.list_versions(conn, memory.id) for memory in memories}
                    if include_versions else {})
    items = []
    for memory in memories:
        item = {"content": memory.content, "type": memory.type, "tags": memory.tags,
                "metadata": memory.metadata, "source": memory.source,
                "created_at": memory.created_at, "updated_at": memory.updated_at}
        if memory.id in vectors:
            item["embedding"] = vectors[memory.id]
        if include_versions:
            item["versions"] = [version.to_dict() for version in versions[memory.id]]
        items.append(item)
    return {"format": FORMAT, "version": VERSION, "exported_at": exported_at or store.utc_now(),
            "embedding_model": model_id, "dimensions": store.vector_width(conn),
            "memories": items}


# Only what CommonMark would read as markup is escaped (a backslash before ASCII punctuation
# makes it literal), so that the export still reads as the plain text it holds: dates,
# apostrophes, "5 * 3", snake_case and C:\Users stay as they are.
_INLINE_MARKUP = re.compile(
    r"""\\(?=[!-/:-@\[-`{-~]|$)"""   # a backslash that would escape or break a line
    r"""|`"""                         # code spans
    r"""|(?<!\s)\*|\*(?!\s|$)"""        # emphasis: a * not between spaces
    r"""|(?<![^\W_])_|_(?![^\W_])"""     # emphasis: a _ not inside a word
    r"""|<(?=[A-Za-z/!?])"""          # raw HTML and autolinks
    r"""|&(?=#?\w+;)"""               # entities such as &amp;
    r"""|\[(?=.*\][(\[:])""",          # links, images, references: [ before ]( ][ or ]:
    re.DOTALL | re.MULTILINE)
_BLOCK_START = re.compile(
    r"""^[ \t]*(?:"""
    r"""#{1,6}(?=[ \t]|$)"""            # a heading
    r"""|[-+*](?=[ \t]|$)"""            # a bullet
    r"""|>|~~~"""                     # a quote, a fence
    r"""|[=-]+[ \t]*$"""               # a setext underline
    r"""|([-_*])(?:[ \t]*\1){2,}[ \t]*$"""  # a thematic break
    r""")""", re.MULTILINE)
_ORDERED_ITEM = re.compile(r"^([ \t]*\d{1,9})(?=[.)](?:[ \t]|$))", re.MULTILINE)


def escape_markdown(text: str) -> str:
    """`text` as Markdown that renders as exactly `text` (lines joined as soft breaks)."""
    text = _INLINE_MARKUP.sub(lambda match: "\\" + match.group(), text)
    text = _BLOCK_START.sub(
        lambda match: re.sub(r"^([ \t]*)", r"\1\\", match.group(), count=1), text)
    return _ORDERED_ITEM.sub(r"\1\\", text)


def export_markdown(conn: Any, *, exported_at: str | None = None) -> str:
    """The memories for people to read, grouped by type, oldest first within each."""
    memories = all_memories(conn)
    lines = ["# Lumara memories", "",
             f"Exported {exported_at or store.utc_now()}: {len(memories)} memories.", ""]
    for memory_type in MEMORY_TYPES:
        group = [memory for memory in memories if memory.type == memory_type]
        if not group:
            continue
        lines += [f"## {memory_type.capitalize()} ({len(group)})", ""]
        for memory in group:
            # One list item per memory; each line of the content escaped and indented under
            # it (leading spaces dropped so none turns into a code block), joined by hard
            # breaks (a backslash at the end of a line).
            stripped = "\n".join(line.strip() for line in memory.content.splitlines())
            content_lines = [line for line in escape_markdown(stripped).splitlines() if line]
            lines.append("- " + "\\\n  ".join(content_lines))
            details = [f"created {escape_markdown(memory.created_at)}"]
            if memory.tags:
                details.append("tags: " + ", ".join(escape_markdown(tag) for tag in memory.tags))
            lines.append(f"  *{'; '.join(details)}*")
        lines.append("")
    return "\n".join(lines)


@dataclass(frozen=True)
class Export:
    """One export file: its text, media type and name (dated the day it was made)."""

    text: str
    media_type: str
    filename: str


def export(conn: Any, export_format: str, *, model_id: str | None,
           include_vectors: bool = False, include_versions: bool = False) -> Export:
    """Every memory as a file in one of EXPORT_FORMATS; the vector and version options apply
    to JSON (see build_export). One clock reading stamps both the content and the name."""
    exported_at = store.utc_now()
    media_type, extension = EXPORT_FORMATS[export_format]
    if export_format == "markdown":
        text = export_markdown(conn, exported_at=exported_at)
    else:
        document = build_export(conn, model_id=model_id, include_vectors=include_vectors,
                                include_versions=include_versions, exported_at=exported_at)
        text = json.dumps(document, ensure_ascii=False)
    return Export(text, media_type, f"lumara-export-{exported_at[:10]}.{extension}")


# -- import: validation --------------------------------------------------------------------
def parse_import(body: Mapping[str, Any], settings: Mapping[str, Any], *,
                 max_memories: int | None = None) -> ImportDocument:
    """Check the whole document; the first problem raises ValidationError naming the memory's
    index and field, before anything is written."""
    max_memories = MAX_IMPORT_MEMORIES if max_memories is None else max_memories
    reject_unknown_fields(body, _DOCUMENT_FIELDS)
    if body.get("format") != FORMAT:
        raise _invalid(f"format must be {FORMAT!r}: this is not a Lumara export "
                       f"(got {_shown(body.get('format'))}).", "invalid_format")
    if body.get("version") != VERSION or isinstance(body.get("version"), bool):
        raise _invalid(f"version {_shown(body.get('version'))} is not supported; this Lumara "
                       f"reads version {VERSION}.", "unsupported_version")
    model = body.get("embedding_model")
    if model is not None and not isinstance(model, str):
        raise _invalid("embedding_model must be a string or null.", "invalid_embedding_model")
    dimensions = body.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool)
                                   or dimensions < 1):
        raise _invalid(f"dimensions must be a positive whole number (got {_shown(dimensions)}).",
                       "invalid_dimensions")
    items = body.get("memories")
    if not isinstance(items, list):
        raise _invalid("memories must be a list of memory objects.", "invalid_memories")
    if len(items) > max_memories:
        raise _invalid(f"The document holds {len(items):,} memories; one import takes at most "
                       f"{max_memories:,}. Split the file and import the parts.",
                       "too_many_memories")
    memories = []
    for index, item in enumerate(items):
        try:
            memories.append(_parse_memory(item, settings, dimensions))
        except ValidationError as error:
            raise ValidationError(f"memories[{index}]: {error.message} Nothing was imported.",
                                  code=error.code) from None
    return ImportDocument(model, dimensions, memories)


def _parse_memory(item: Any, settings: Mapping[str, Any],
                  dimensions: int | None) -> ImportedMemory:
    _check_object(item, _MEMORY_FIELDS, "memory", "invalid_memory")
    new = _new_memory(item, settings)
    source = IMPORT_SOURCE
    if "source" in item:
        source = parse_text(item["source"], MAX_SOURCE_CHARS, field="source")
    created_at = _timestamp(item, "created_at")
    updated_at = _timestamp(item, "updated_at")
    return ImportedMemory(new, source, created_at, updated_at,
                          _embedding(item.get("embedding"), dimensions),
                          _versions(item.get("versions"), settings))


def _check_object(item: Any, allowed: set[str], what: str, code: str) -> None:
    """`item` is an object whose fields are all among `allowed`."""
    if not isinstance(item, dict):
        raise _invalid(f"each {what} must be an object, not {_shown(item)}.", code)
    reject_unknown_fields(item, allowed)


def _new_memory(item: dict, settings: Mapping[str, Any]) -> NewMemory:
    """Content, type, tags and metadata, checked as POST /api/memories checks them."""
    return parse_new_memory({key: item[key] for key in ("content", "type", "tags", "metadata")
                             if key in item}, settings)


# An imported version number counts edits: a billion leaves every real history room and
# keeps the next one (the largest + 1) far inside SQLite's 64-bit integers.
MAX_IMPORTED_VERSION = 10**9
# Earlier versions one imported memory may bring: ten thousand edits of one note is far past
# any real history, and the cap keeps a hostile file from holding a request for seconds.
MAX_IMPORTED_VERSIONS = 10_000


def _versions(value: Any, settings: Mapping[str, Any]) -> tuple[MemoryVersion, ...]:
    """A memory's earlier versions, each checked like a memory of its own."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _invalid(f"versions must be a list of version objects, not {_shown(value)}.",
                       "invalid_versions")
    if len(value) > MAX_IMPORTED_VERSIONS:
        raise _invalid(f"versions holds {len(value):,} earlier versions; one memory may bring "
                       f"at most {MAX_IMPORTED_VERSIONS:,}. Drop the oldest and import again.",
                       "too_many_versions")
    versions: list[MemoryVersion] = []
    numbers: set[int] = set()
    for index, item in enumerate(value):
        try:
            versions.append(_version(item, settings))
        except ValidationError as error:
            raise ValidationError(f"versions[{index}]: {error.message}",
                                  code=error.code) from None
        if versions[-1].version in numbers:
            raise _invalid(f"versions[{index}]: version {versions[-1].version} appears twice.",
                           "invalid_versions")
        numbers.add(versions[-1].version)
    return tuple(versions)


def _version(item: Any, settings: Mapping[str, Any]) -> MemoryVersion:
    _check_object(item, _VERSION_FIELDS, "version", "invalid_versions")
    number = item.get("version")
    if not isinstance(number, int) or isinstance(number, bool) \
            or not 1 <= number <= MAX_IMPORTED_VERSION:
        raise _invalid(f"version must be a whole number from 1 to {MAX_IMPORTED_VERSION:,} (got "
                       f"{_shown(number)}).", "invalid_versions")
    change = item.get("change", "edit")
    if change not in VERSION_CHANGES:
        raise _invalid(f"change must be one of {', '.join(VERSION_CHANGES)} (got "
                       f"{_shown(change)}).", "invalid_versions")
    replaced_at = _timestamp(item, "replaced_at")
    if replaced_at is None:
        raise _invalid("replaced_at is required: when this version was replaced.",
                       "invalid_timestamp")
    new = _new_memory(item, settings)
    return MemoryVersion(version=number, content=new.content, type=new.type, tags=new.tags,
                         metadata=new.metadata, replaced_at=replaced_at, change=change)


def _timestamp(item: Mapping[str, Any], name: str) -> str | None:
    """ISO 8601, stored in the store's own form (UTC, milliseconds, Z) so it sorts as text."""
    value = item.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(f"{name} must be an ISO 8601 string, not {_shown(value)}.",
                       "invalid_timestamp")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(f"{name} {value[:40]!r} is not an ISO 8601 date and time.",
                       "invalid_timestamp") from None
    if moment.tzinfo is None:  # Lumara writes UTC; a bare time is read as UTC too
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        moment = moment.astimezone(timezone.utc)
    except OverflowError:  # e.g. 0001-01-01T00:00+14:00 is in the year 0 in UTC
        raise _invalid(f"{name} {value[:40]!r} is outside the years 1 to 9999 in UTC.",
                       "invalid_timestamp") from None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _embedding(value: Any, dimensions: int | None) -> np.ndarray | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _invalid(f"embedding must be a list of numbers, not {_shown(value)}.",
                       "invalid_embedding")
    expected = dimensions or EMBEDDING_DIMENSIONS  # files from before the field: 384
    if len(value) != expected:
        raise _invalid(f"embedding has {len(value)} numbers; the document says {expected}.",
                       "invalid_embedding")
    # Vectors are stored as float32: a larger number would become infinity.
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
               and abs(x) <= _FLOAT32_MAX for x in value):
        raise _invalid("embedding must hold only finite numbers within float32 range.",
                       "invalid_embedding")
    vector = np.asarray(value, dtype=np.float32)
    if not np.any(vector):  # a zero vector has no direction to compare
        raise _invalid("embedding is all zeros.", "invalid_embedding")
    return vector


# -- import: merging -----------------------------------------------------------------------
# The phases of an import, in order; progress(phase, done, total) reports each.
PHASES = ("embedding", "checking", "writing")
Progress = Callable[[str, int, int], None]
# Memories checked, or written, between two progress reports.
REPORT_EVERY = 500


@dataclass(frozen=True)
class ImportPlan:
    """What the check decided: the positions in the file to add, and the duplicates skipped
    as (position, id of a stored memory or None, position of an earlier one in the file or
    None, similarity)."""

    new: list[int]
    skipped: list[tuple[int, int | None, int | None, float]]


def apply_import(conn: Any, document: ImportDocument, *, embeddings: EmbeddingService,
                 settings: Mapping[str, Any], vector_index: VectorIndex | None = None,
                 progress: Progress | None = None, batch: int = BATCH) -> ImportResult:
    """Add the document's memories, with their earlier versions, skipping any whose content
    equals (up to whitespace) or nearly duplicates an existing memory or an earlier one in
    the file. Three phases, each reported through `progress(phase, done, total)`:

    - embedding: the file's vectors are used only when they come from this model at this
      width; otherwise (and for memories without one) the contents are embedded here, in
      batches of `batch`;
    - checking: each memory is compared with the stored ones and the file's earlier ones,
      reading only;
    - writing: the new memories are added in one transaction, so an import is all or
      nothing — a failure or a crash before its commit leaves the database as it was. The
      write lock is held for this phase alone (the slow work is done before it), so other
      writers wait seconds at most and readers (WAL) not at all."""
    report = progress or (lambda phase, done, total: None)
    vectors, reembedded = _vectors(document, embeddings, report, batch)
    plan = check_import(conn, document, vectors, settings, vector_index, report)
    ids = write_import(conn, document, vectors, plan.new, report)
    skipped = [{"index": index, "content": document.memories[index].new.content,
                "existing_id": stored if stored is not None else ids[earlier],
                "similarity": round(float(similarity), 4)}
               for index, stored, earlier, similarity in plan.skipped]
    return ImportResult(imported=len(ids), skipped_duplicates=skipped, reembedded=reembedded)


def _vectors(document: ImportDocument, embeddings: EmbeddingService, report: Progress,
             batch: int) -> tuple[list[np.ndarray], bool]:
    """Every memory's vector, and whether any had to be computed here."""
    same_model = (document.embedding_model == embeddings.model_id
                  and document.dimensions == embeddings.dimensions)
    missing = [i for i, memory in enumerate(document.memories)
               if not same_model or memory.embedding is None]
    vectors = [memory.embedding if same_model else None for memory in document.memories]
    report("embedding", 0, len(missing))
    for start in range(0, len(missing), batch):
        rows = missing[start:start + batch]
        computed = embeddings.embed_many([document.memories[i].new.content for i in rows])
        for i, vector in zip(rows, computed):
            vectors[i] = vector
        report("embedding", start + len(rows), len(missing))
    return vectors, bool(missing)


def check_import(conn: Any, document: ImportDocument, vectors: list[np.ndarray],
                 settings: Mapping[str, Any], vector_index: VectorIndex | None,
                 report: Progress) -> ImportPlan:
    """Decide, reading only, which memories are new and which duplicate another."""
    threshold = settings["duplicate_threshold"]
    total = len(document.memories)
    # The index sees only committed memories: the file's own are compared with each other
    # here.
    kept = KeptNeighbours(np.stack([_unit(vector) for vector in vectors])
                          if vectors else np.empty((0, 1), np.float32), threshold)
    contents = [memory.new.content for memory in document.memories]
    seen_contents: dict[str, int] = {}  # normalized content -> position of the one kept
    plan = ImportPlan([], [])
    report("checking", 0, total)
    for index, (content, vector) in enumerate(zip(contents, vectors)):
        normalized = " ".join(content.split())
        if normalized in seen_contents:
            plan.skipped.append((index, None, seen_contents[normalized], 1.0))
        else:
            stored_id, earlier_index, similarity = _nearest_duplicate(
                conn, vector, content, threshold, settings, vector_index,
                [(j, contents[j], cosine)
                 for j, cosine in kept.near(index, DUPLICATE_CANDIDATES)])
            if stored_id is None and earlier_index is None:
                seen_contents[normalized] = index
                kept.keep(index)
                plan.new.append(index)
            else:
                plan.skipped.append((index, stored_id, earlier_index, similarity))
        if (index + 1) % REPORT_EVERY == 0 or index + 1 == total:
            report("checking", index + 1, total)
    return plan


def write_import(conn: Any, document: ImportDocument, vectors: list[np.ndarray],
                 new: list[int], report: Progress) -> dict[int, int]:
    """Add the memories at positions `new` with their versions, in one transaction; the
    id each got, by position."""
    ids: dict[int, int] = {}
    report("writing", 0, len(new))
    with transaction(conn):
        for start in range(0, len(new), REPORT_EVERY):
            chunk = new[start:start + REPORT_EVERY]
            stored = store.insert_memories(conn, (_stored(document.memories[index],
                                                          vectors[index]) for index in chunk))
            ids.update(zip(chunk, stored))
            report("writing", start + len(chunk), len(new))
    return ids


def _stored(memory: ImportedMemory, vector: np.ndarray) -> store.NewStoredMemory:
    return store.NewStoredMemory(
        content=memory.new.content, type=memory.new.type, tags=memory.new.tags,
        embedding=vector, source=memory.source, metadata=memory.new.metadata,
        created_at=memory.created_at, updated_at=memory.updated_at, versions=memory.versions)


# Neighbours judged per imported memory, among the stored ones and among the file's own
# (find_related's count for one finding): a file of alike sentences ("Nadia prefers rye
# bread", "Zara prefers rye bread", ...) would otherwise have each judged against thousands.
DUPLICATE_CANDIDATES = 4
# File rows compared at a time with the rows kept before them: a TILE × kept block of
# float32 cosines, 100 MB at 100,000 kept.
TILE = 256


class KeptNeighbours:
    """A file's memories kept so far (as unit rows of `vectors`), to find each next one's
    near duplicates among them. Each TILE of the file is compared with the rows kept before
    it in one matrix product, and row by row with those kept within it: memory is the kept
    rows and one TILE × kept block, never all the file's close pairs (a 100,000-memory file
    of alike sentences has tens of millions of them)."""

    def __init__(self, vectors: np.ndarray, threshold: float):
        self.vectors = vectors
        self.threshold = threshold
        self._rows = np.empty_like(vectors)  # the kept rows, in the order kept
        self._positions: list[int] = []  # each kept row's position in the file
        self._block_start = -1
        self._block: np.ndarray = np.empty((0, 0), np.float32)
        self._before_block = 0  # rows kept before the block began

    def near(self, index: int, limit: int) -> list[tuple[int, float]]:
        """The `limit` closest kept rows before `index` at cosine ≥ threshold: (position,
        cosine), closest first. Asked in increasing order of `index`."""
        start = index - index % TILE
        if start != self._block_start:
            self._block_start, self._before_block = start, len(self._positions)
            self._block = (self.vectors[start:start + TILE]
                           @ self._rows[:self._before_block].T)
        found = _closest(self._block[index - start], self.threshold, limit)
        if len(self._positions) > self._before_block:  # kept since the block began
            within = self._rows[self._before_block:len(self._positions)] @ self.vectors[index]
            found += [(self._before_block + row, cosine)
                      for row, cosine in _closest(within, self.threshold, limit)]
        found.sort(key=lambda pair: -pair[1])
        return [(self._positions[row], cosine) for row, cosine in found[:limit]]

    def keep(self, index: int) -> None:
        self._rows[len(self._positions)] = self.vectors[index]
        self._positions.append(index)


def _closest(cosines: np.ndarray, threshold: float, limit: int) -> list[tuple[int, float]]:
    """The columns of the `limit` largest `cosines` at or above `threshold`, with them."""
    columns = np.nonzero(cosines >= threshold)[0]
    if len(columns) > limit:
        columns = columns[np.argpartition(-cosines[columns], limit - 1)[:limit]]
    return [(int(column), float(cosines[column])) for column in columns]


def _nearest_duplicate(conn: Any, vector: np.ndarray, content: str, threshold: float,
                       settings: Mapping[str, Any], vector_index: VectorIndex | None,
                       earlier: list[tuple[int, str, float]]
                       ) -> tuple[int | None, int | None, float]:
    """The memory `content` (embedded as `vector`) duplicates, as (id of a stored one,
    position of an earlier one in the file, similarity) with one of the two set, or
    (None, None, -1.0): among the stored memories, then among `earlier`, the (position,
    content, cosine) of those this import adds; both at cosine ≥ threshold.

    Skipping loses the memory, so only pairs at or above `threshold` count, and never one
    the pair classifier calls a contradiction (or a swapped value): "My shoe size is 42."
    is imported next to "My shoe size is 39."."""
    # Rewordings below the threshold are not skipped: reworded_duplicate = threshold.
    thresholds = replace(insights.pair_thresholds(settings), duplicate=threshold,
                         reworded_duplicate=threshold)
    # The stored neighbours at or above the threshold, as for the file's own (near_earlier).
    # find_related also judges farther ones (for contradictions), and its synonym rule
    # called some of them duplicates ("Nadia prefers rye bread" / "Zara prefers rye bread",
    # 0.80): such pairs are imported, and judging only the near ones takes a fraction of
    # the time.
    best_id, best = None, -1.0
    for hit in retrieval.search(conn, vector, k=DUPLICATE_CANDIDATES, threshold=threshold,
                                index=vector_index):  # closest first
        if pair_judge.classify(hit.memory.content, content, hit.similarity,
                               thresholds).label == "duplicate":
            best_id, best = hit.memory.id, hit.similarity
            break
    for position, earlier_content, cosine in earlier:  # closest first, all ≥ threshold
        if cosine <= best:
            break
        if pair_judge.classify(earlier_content, content, cosine,
                               thresholds).label == "duplicate":
            return None, position, cosine
    return best_id, None, best


def _unit(vector: np.ndarray) -> np.ndarray:
    return np.asarray(vector, dtype=np.float32) / np.linalg.norm(vector)


def _invalid(message: str, code: str) -> ValidationError:
    return ValidationError(message, code=code)


def _shown(value: Any) -> str:
    if value is None:
        return "nothing"
    return repr(value)[:40] if isinstance(value, (str, int, float)) else type(value).__name__
