"""Typed (`section_12`, `property_5`, `value_7`) and untyped (`12`) ids, one integer counter per kind."""
from __future__ import annotations

import re

KINDS = ("section", "property", "value")
_TYPED = re.compile(r"^([a-z]+)_(\d{1,18})$")
_UNTYPED = re.compile(r"^\d{1,18}$")


class InvalidId(ValueError):
    pass


def typed(kind: str, number: int | None) -> str | None:
    return None if number is None else f"{kind}_{number}"


def parse_id(raw: object, kind: str) -> int:
    """The integer id of `raw` (`section_12`, `"12"` or `12`); InvalidId with a human reason otherwise."""
    if isinstance(raw, bool) or raw is None:
        raise InvalidId(f"{raw!r} is not a {kind} id")
    if isinstance(raw, int):
        if raw < 1:
            raise InvalidId(f"{raw} is not a {kind} id")
        return raw
    if not isinstance(raw, str):
        raise InvalidId(f"{raw!r} is not a {kind} id")
    text = raw.strip().lower()
    if _UNTYPED.match(text):
        number = int(text)
    else:
        match = _TYPED.match(text)
        if not match:
            raise InvalidId(f"{raw!r} is not a {kind} id like '{kind}_12' or 12")
        if match.group(1) != kind:
            raise InvalidId(f"{raw!r} is not a {kind} id (it names a {match.group(1)})")
        number = int(match.group(2))
    if number < 1:
        raise InvalidId(f"{raw!r} is not a {kind} id")
    return number


def parse_optional_section(raw: object) -> int | None:
    """A section id, or None for the root (`None`, `""`, `"root"`, `0`)."""
    if raw is None or raw == 0 and not isinstance(raw, bool):
        return None
    if isinstance(raw, str) and raw.strip().lower() in ("", "root", "null", "none", "0"):
        return None
    return parse_id(raw, "section")
