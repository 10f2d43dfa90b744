"""Request parameters in the wire conventions of DESIGN.md section 7: typed ids and true/false flags."""
from __future__ import annotations

import re
from typing import Any, Mapping

import orjson
from flask import request

from shared.errors import BadRequest, PayloadTooLarge

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


PAGING_PARAMETERS = ("max_results", "max-results", "offset", "range_start")


def _bounded_int(pairs: Mapping[str, str], names: tuple[str, ...], default: int, *, low: int, high: int) -> int:
    for name in names:
        if name in pairs:
            raw = pairs[name]
            try:
                value = int(raw)
            except ValueError:
                raise BadRequest(f"`{name}` must be a whole number, not {raw!r}.", message_type="invalid_parameter") from None
            if not low <= value <= high:
                raise BadRequest(f"`{name}` must be between {low} and {high}.", message_type="invalid_parameter")
            return value
    return default


def parse_paging(pairs: Mapping[str, str], *, default_page: int, max_page: int) -> tuple[int, int]:
    """(limit, offset) from `max_results`/`max-results` and `offset`/`range_start`; a 400 beyond bounds."""
    limit = _bounded_int(pairs, ("max_results", "max-results"), default_page, low=1, high=max_page)
    offset = _bounded_int(pairs, ("offset", "range_start"), 0, low=0, high=10**9)
    return limit, offset


def parse_json(raw: bytes | str, *, what: str = "The body") -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"{what} is not valid JSON: {exc}.", message_type="invalid_json") from None


def json_body(*, limit: int | None = None, required: bool = True, cache: bool = False) -> Any:
    """The request's JSON body; 413 past `limit` bytes, 400 when empty (unless not required) or malformed."""
    if limit is not None and (request.content_length or 0) > limit:
        raise PayloadTooLarge(f"JSON bodies are limited to {limit} bytes.")
    raw = request.get_data(cache=cache)
    if limit is not None and len(raw) > limit:
        raise PayloadTooLarge(f"JSON bodies are limited to {limit} bytes.")
    if not raw.strip():
        if required:
            raise BadRequest("The request body is empty; send a JSON object.", message_type="empty_body")
        return None
    return parse_json(raw)
