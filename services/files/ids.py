"""Datafile ids: `datafile_9` or `9`; section ids as the metadata service writes them."""
from __future__ import annotations

import re

_TYPED = re.compile(r"^([a-z]+)_(\d{1,18})$")
_UNTYPED = re.compile(r"^\d{1,18}$")


class InvalidId(ValueError):
    pass


def typed(kind: str, number: int | None) -> str | None:
    return None if number is None else f"{kind}_{number}"


def parse_id(raw: object, kind: str) -> int:
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
        if not match or match.group(1) != kind:
            raise InvalidId(f"{raw!r} is not a {kind} id like '{kind}_12' or 12")
        number = int(match.group(2))
    if number < 1:
        raise InvalidId(f"{raw!r} is not a {kind} id")
    return number


def parse_optional_section(raw: object) -> int | None:
    """A section id, or None (no section) for `None`, `""`, `"null"`, `"none"`, `"root"`, `0`."""
    if raw is None or (isinstance(raw, int) and not isinstance(raw, bool) and raw == 0):
        return None
    if isinstance(raw, str) and raw.strip().lower() in ("", "root", "null", "none", "0"):
        return None
    return parse_id(raw, "section")
