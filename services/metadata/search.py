"""The denormalised lower-case `search_text` of sections and properties, and `q` as MongoDB clauses.

`$text` is not available (DESIGN.md section 6), so `q` is split into words and every word must
occur in `search_text` (`$regex` on an escaped literal, all lower-case): one query over an indexed
field, combined with the indexed permission and scope filters.

- a section's text: its name, description and type, plus its properties' names and values;
- a property's text: its name, description, definition and type, plus its values.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from shared.errors import BadRequest

MAX_WORDS = 10
MAX_WORD = 200


def _join(pieces: Iterable[Any], limit: int) -> str:
    text = "\n".join(str(p).lower() for p in pieces if p not in (None, ""))
    return text[:limit]


def property_search_text(prop: Mapping[str, Any], limit: int = 100_000) -> str:
    values = [entry.get("text") for entry in prop.get("values") or ()]
    return _join([prop.get("name"), prop.get("description"), prop.get("definition"), prop.get("type"), *values], limit)


def section_search_text(section: Mapping[str, Any], properties: Iterable[Mapping[str, Any]] = (), limit: int = 100_000) -> str:
    pieces: list[Any] = [section.get("name"), section.get("description"), section.get("type")]
    for prop in properties:
        pieces.append(prop.get("name"))
        pieces.extend(entry.get("text") for entry in prop.get("values") or ())
    return _join(pieces, limit)


def q_clauses(q: str, field: str = "search_text") -> list[dict[str, Any]]:
    """Each word of `q` must occur (as typed, case-insensitively) in `field`."""
    words = q.lower().split()
    if len(words) > MAX_WORDS or any(len(word) > MAX_WORD for word in words):
        raise BadRequest(f"`q` takes at most {MAX_WORDS} words of {MAX_WORD} characters.", message_type="invalid_parameter")
    return [{field: {"$regex": re.escape(word)}} for word in words]
