"""What the MCP tools and the memory resource do, over the services. Plain Python, with the
REST API's validation and service calls: a memory added through MCP is checked, stored and
compared with the others exactly as one POSTed to /api/memories. Failures are LumaraErrors
whose messages say what was wrong; server.py hands them to the client as tool errors.

The signatures are the tools' input schemas (server.py registers these methods), and the
docstrings are what the client's model reads about each tool."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Annotated, Any, Iterator, Literal

from pydantic import Field

from ..config import MEMORY_TYPES
from ..errors import NotFound
from ..memory import validation
from ..services import Services

# The three kinds of memory, as the input schemas list them.
MemoryType = Literal[MEMORY_TYPES]  # type: ignore[valid-type]
# SQLite integers are signed 64-bit: no memory can have a larger id.
MAX_ID = 2**63 - 1
DEFAULT_RECENT = 10
# Where a memory added through MCP says it came from (the page shows a memory's source).
SOURCE = "mcp"


class MemoryTools:
    """One per services object; each call opens its own database connection (tools run on
    the SDK's worker threads)."""

    def __init__(self, services: Services):
        self.services = services

    @property
    def settings(self) -> dict:
        return self.services.settings

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        conn = self.services.connect()
        try:
            yield conn
        finally:
            conn.close()

    # -- the tools ------------------------------------------------------------------------
    def search_memories(
            self,
            query: Annotated[str, Field(description="What to look for, in plain words.")],
            k: Annotated[int | None, Field(description="How many results at most "
                                                       "(default 10).")] = None,
            type: Annotated[MemoryType | None, Field(
                description="Only memories of this type.")] = None) -> dict[str, Any]:
        """Search the user's memories by meaning and by shared words. Returns the closest
        memories, best first, each with its id and similarity (0 to 1)."""
        args = {"q": query, "type": type or ""}
        if k is not None:
            args["k"] = str(k)
        parsed = validation.parse_search_query(args, self.settings)
        with self._connection() as conn:
            return self.services.memories.search(conn, parsed).to_dict()

    def add_memory(
            self,
            content: Annotated[str, Field(description="The memory, as one self-contained "
                                                      "statement.")],
            type: Annotated[MemoryType, Field(
                description="knowledge (a fact), experience (something that happened) or "
                            "method (how to do something).")] = "knowledge",
            tags: Annotated[list[str] | None, Field(description="Short labels, e.g. "
                                                                "[\"family\"].")] = None,
    ) -> dict[str, Any]:
        """Remember something for the user. The memory is always saved; the result also lists
        existing memories it duplicates and ones it may contradict, so you can tell the user
        or update or delete the older one."""
        new = validation.parse_new_memory(
            {"content": content, "type": type, "tags": [] if tags is None else tags},
            self.settings)
        with self._connection() as conn:
            memory, findings = self.services.memories.add(conn, new, source=SOURCE)
        return {"memory": memory.to_dict(), **findings.to_dict()}

    def update_memory(
            self,
            id: Annotated[int, Field(description="The memory's id (from search_memories or "
                                                 "recent_memories).")],
            content: Annotated[str | None, Field(description="The new text.")] = None,
            type: Annotated[MemoryType | None, Field(description="The new type.")] = None,
            tags: Annotated[list[str] | None, Field(description="The new tags (they replace "
                                                                "the old ones).")] = None,
    ) -> dict[str, Any]:
        """Change a memory's text, type or tags (give at least one). The earlier version is
        kept in its history; a new text is compared with the other memories as when adding."""
        changes = {name: value for name, value in
                   (("content", content), ("type", type), ("tags", tags)) if value is not None}
        patch = validation.parse_memory_patch(changes, self.settings)
        memory_id = existing_id(id)
        with self._connection() as conn:
            memory, findings = self.services.memories.edit(conn, memory_id, patch)
        return {"memory": memory.to_dict(), **findings.to_dict()}

    def delete_memory(
            self,
            id: Annotated[int, Field(description="The memory's id.")]) -> dict[str, Any]:
        """Move a memory to the trash. The user can restore it from the trash on Lumara's
        page until it is emptied."""
        memory_id = existing_id(id)
        with self._connection() as conn:
            deleted = self.services.memories.delete(conn, memory_id)
        return {"deleted": deleted.to_dict(),
                # As the REST API's DELETE answers: how to undo it.
                "undo": {"method": "POST", "url": f"/api/trash/{memory_id}/restore"},
                "trash_days": self.settings["trash_days"]}

    def recent_memories(
            self,
            limit: Annotated[int, Field(description="How many (default 10).")] = DEFAULT_RECENT,
    ) -> dict[str, Any]:
        """The user's most recently added memories, newest first, and how many there are."""
        query = validation.parse_list_query({"limit": str(limit)}, self.settings)
        with self._connection() as conn:
            items, total = self.services.memories.list(conn, query)
        return {"items": [item.to_dict() for item in items], "total": total}

    def ask(self, question: Annotated[str, Field(description="The question, in plain "
                                                             "words.")]) -> dict[str, Any]:
        """Ask Lumara's own model a question answered from the user's memories. Returns the
        answer and the memories it rests on (an empty list: none was used). Slower than
        search_memories: it runs a local language model."""
        text = validation.parse_text(question, self.settings["max_message_chars"],
                                     field="question")
        with self._connection() as conn:
            return self.services.chat.ask(conn, text).to_dict()

    # -- the resource ---------------------------------------------------------------------
    def read_memory(self, id: str) -> str:
        """One memory as JSON: its text, type, tags, dates, source and metadata."""
        if not id.isascii() or not id.isdigit():
            raise NotFound(f"memory://{id[:40]} names no memory: the address is memory:// "
                           "and a memory's id, a whole number.", code="memory_not_found")
        with self._connection() as conn:
            memory = self.services.memories.get(conn, existing_id(int(id)))
        return json.dumps(memory.to_dict(), ensure_ascii=False)


def existing_id(memory_id: int) -> int:
    """`memory_id`, or memory_not_found for a number no memory can have."""
    if not 1 <= memory_id <= MAX_ID:
        raise NotFound(f"No memory has id {memory_id}.", code="memory_not_found")
    return memory_id
