"""Typed (`segment_12`) and untyped (`12`) object ids."""
from __future__ import annotations

import re

from services.neo.schema import NEO_TYPES

_TYPED = re.compile(r"^([a-z]+)_(\d{1,18})$")
_UNTYPED = re.compile(r"^\d{1,18}$")


class InvalidId(ValueError):
    pass


def neo_id(type_name: str, object_id: int) -> str:
    return f"{type_name}_{object_id}"


def parse_id(raw: object, expected_type: str | None = None) -> tuple[str | None, int]:
    """(type or None when untyped, integer id). Raises InvalidId with a human reason."""
    if isinstance(raw, bool):
        raise InvalidId(f"{raw!r} is not an object id")
    if isinstance(raw, int):
        if raw < 1:
            raise InvalidId(f"{raw} is not an object id")
        return None, raw
    if not isinstance(raw, str):
        raise InvalidId(f"{raw!r} is not an object id")
    text = raw.strip().lower()
    if _UNTYPED.match(text):
        if int(text) < 1:
            raise InvalidId(f"{raw!r} is not an object id")
        return None, int(text)
    match = _TYPED.match(text)
    if not match or match.group(1) not in NEO_TYPES:
        raise InvalidId(f"{raw!r} is not an object id like 'segment_12' or 12")
    if expected_type and match.group(1) != expected_type:
        raise InvalidId(f"{raw!r} is not a {expected_type} id")
    return match.group(1), int(match.group(2))


def parse_typed(raw: object) -> tuple[str, int]:
    type_name, object_id = parse_id(raw)
    if type_name is None:
        raise InvalidId(f"{raw!r} needs its type, like 'segment_12'")
    return type_name, object_id
