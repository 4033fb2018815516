"""Reading the evaluation's JSON-lines files (retrieval sets and labelled pairs): one
object per line, blank lines skipped, every problem named by file:line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterator

from lumara_web.errors import ValidationError


def json_objects(path: Path, what: str,
                 bad: Callable[[str], ValidationError]) -> Iterator[tuple[str, int, dict]]:
    """(where — "file:line" —, line number, object) for each non-blank line of `path`;
    `bad(message)` makes the error raised for an unreadable file, a line that is not JSON
    or not an object. `what` names the file in that message ("retrieval file")."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as failure:
        raise bad(f"{path}: cannot read the {what} ({failure}).") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{number}"
        try:
            item = json.loads(raw)
        except ValueError as failure:
            raise bad(f"{where}: not valid JSON ({failure}).") from None
        if not isinstance(item, dict):
            raise bad(f"{where}: expected a JSON object.")
        yield where, number, item
