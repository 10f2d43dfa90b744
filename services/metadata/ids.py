"""Typed (`section_12`, `property_5`, `value_7`) and untyped (`12`) ids, one integer counter per kind."""
from __future__ import annotations

from shared.params import InvalidId, parse_id, parse_optional_id, typed_id as typed

KINDS = ("section", "property", "value")

__all__ = ["KINDS", "InvalidId", "parse_id", "parse_optional_section", "typed"]


def parse_optional_section(raw: object) -> int | None:
    """A section id, or None for the root (`None`, `""`, `"root"`, `0`)."""
    return parse_optional_id(raw, "section")
