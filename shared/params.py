"""Request parameters in the wire conventions of DESIGN.md section 7: typed ids and true/false flags."""
from __future__ import annotations

import re
from typing import Any

from shared.errors import BadRequest

_TYPED = re.compile(r"^([a-z]+)_(\d{1,18})$")
_UNTYPED = re.compile(r"^\d{1,18}$")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
_NO_ID = ("", "root", "null", "none", "0")


class InvalidId(ValueError):
    pass


def typed_id(kind: str, number: int | None) -> str | None:
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


def parse_optional_id(raw: object, kind: str) -> int | None:
    """An id, or None (the root, no parent) for `None`, `""`, `"root"`, `"null"`, `"none"`, `0`."""
    if raw is None or (isinstance(raw, int) and not isinstance(raw, bool) and raw == 0):
        return None
    if isinstance(raw, str) and raw.strip().lower() in _NO_ID:
        return None
    return parse_id(raw, kind)


def parse_flag(value: Any, name: str, default: bool = False) -> bool:
    """A true/false parameter (`1`/`0`, `true`/`false`, `yes`/`no`, `on`/`off`); a 400 otherwise."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadRequest(f"`{name}` must be true or false (1 or 0), not {value!r}.", message_type="invalid_parameter")
