"""Database ids in URLs, shared by the JSON blueprints: a strict converter, and a 404 (not a
500) for ids too large for SQLite."""

from __future__ import annotations

from flask import Blueprint
from werkzeug.routing import BaseConverter

from ..errors import NotFound

# SQLite integers are signed 64-bit: no row can have a larger id, and binding one
# raises OverflowError (a 500) instead of finding nothing.
MAX_ID = 2**63 - 1


class IdConverter(BaseConverter):
    """An id in the URL: 1 to 19 ASCII digits, else no route matches (404). Werkzeug's int
    converter also takes other Unicode digits, and ids too long for int() (a 500)."""

    regex = r"[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(int(value))


def use_id_converter(bp: Blueprint, name: str = "id") -> None:
    """Make `<name:...>` usable in `bp`'s routes. Call before defining them: the app adds
    a blueprint's routes in definition order, and the converter must exist by then."""
    bp.record_once(lambda state: state.app.url_map.converters.setdefault(name, IdConverter))


def refuse_impossible_ids(bp: Blueprint, **codes: str) -> None:
    """For each URL variable named (e.g. conversation_id="conversation_not_found"), answer
    404 with that code when the id is beyond SQLite's range, before the view runs."""
    @bp.url_value_preprocessor
    def _refuse(_endpoint: str | None, values: dict | None) -> None:
        # Checked here, not in the converter: a converter's refusal makes Werkzeug answer 405.
        for name, code in codes.items():
            value = (values or {}).get(name)
            if value is not None and value > MAX_ID:
                noun = name.removesuffix("_id").replace("_", " ")
                raise NotFound(f"No {noun} has id {value}.", code=code)
