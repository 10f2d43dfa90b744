"""Datafile ids: `datafile_9` or `9`; section ids as the metadata service writes them."""
from __future__ import annotations

from shared.params import InvalidId, parse_id, parse_optional_id, typed_id as typed

__all__ = ["InvalidId", "parse_id", "parse_optional_section", "typed"]


def parse_optional_section(raw: object) -> int | None:
    """A section id, or None (no section) for `None`, `""`, `"null"`, `"none"`, `"root"`, `0`."""
    return parse_optional_id(raw, "section")
