"""Django-style lookups (`name__icontains=trial`, `segment=segment_12`) turned into MongoDB filters.

Shared by the list endpoint and, later, selections. Every filter becomes an indexed MongoDB query;
nothing is evaluated in Python over stored objects.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from services.neo.ids import InvalidId, parse_id
from services.neo.schema import NeoType
from services.neo.units import UnitError, normalise_unit
from services.neo.validate import INT64_MAX, INT64_MIN, parse_datetime
from shared.errors import BadRequest

TEXT_LOOKUPS = ("exact", "iexact", "contains", "icontains", "startswith", "istartswith", "endswith", "iendswith")
ORDER_LOOKUPS = ("gt", "gte", "lt", "lte", "range")
LOOKUPS = TEXT_LOOKUPS + ORDER_LOOKUPS + ("in", "isnull")


class InvalidFilter(BadRequest):
    message_type = "invalid_filter"


@dataclass(frozen=True)
class FieldSpec:
    """A queryable field: where it lives in the document and how to read a value for it."""

    path: str
    kind: str  # str, int, float, datetime, id, quantity
    parent_type: str | None = None
    domain: Any = None


def field_spec(neo_type: NeoType, name: str) -> FieldSpec | None:
    if (attribute := neo_type.attribute(name)) is not None:
        return FieldSpec(name, attribute.kind)
    if name in ("description", "file_origin", "author"):
        return FieldSpec(name, "str")
    if name in ("date_created", "last_modified"):
        return FieldSpec(name, "datetime")
    if name == "size":
        return FieldSpec(name, "int")
    if name in neo_type.parents:
        return FieldSpec(name, "id", parent_type=name)
    data_field = neo_type.data_field(name)
    if data_field is not None and not data_field.is_array:
        return FieldSpec(f"{name}.base", "quantity", domain=data_field.domain)
    return None


def _quantity(spec: FieldSpec, raw: Any) -> float:
    """A number in the domain's base unit (s, v, hz), or "20 khz" with its unit."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    text = str(raw).strip()
    number, _, unit = text.partition(" ")
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"a number, optionally with a unit like '20 khz', not {raw!r}") from None
    if unit:
        try:
            unit = normalise_unit(unit, spec.domain)
        except UnitError as exc:
            raise ValueError(str(exc)) from None
        value *= spec.domain.factor(unit)
    return value


def _coerce(spec: FieldSpec, raw: Any) -> Any:
    if spec.kind == "str":
        return str(raw)
    if spec.kind == "int":
        if isinstance(raw, bool):
            raise ValueError("an integer")
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise ValueError(f"an integer, not {raw!r}") from None
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError("an integer that fits in 64 bits")
        return value
    if spec.kind == "datetime":
        return raw if isinstance(raw, datetime) else parse_datetime(raw)
    if spec.kind == "id":
        try:
            return parse_id(raw, expected_type=spec.parent_type)[1]
        except InvalidId as exc:
            raise ValueError(str(exc)) from None
    return _quantity(spec, raw)


def _as_list(raw: Any) -> list[Any]:
    if isinstance(raw, (list, tuple)):
        return list(raw)
    return [part for part in str(raw).split(",") if part != ""]


def _text_clause(lookup: str, value: str) -> Any:
    if lookup == "exact":
        return value
    pattern = re.escape(value)
    pattern = {"iexact": f"^{pattern}$", "startswith": f"^{pattern}", "istartswith": f"^{pattern}",
               "endswith": f"{pattern}$", "iendswith": f"{pattern}$"}.get(lookup, pattern)
    options = "i" if lookup.startswith("i") else ""
    return {"$regex": pattern, "$options": options} if options else {"$regex": pattern}


def _flag(raw: Any) -> bool:
    text = str(raw).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValueError("true or false")


def lookup_clause(spec: FieldSpec, lookup: str, raw: Any) -> dict[str, Any]:
    coerce: Callable[[Any], Any] = lambda value: _coerce(spec, value)  # noqa: E731
    if lookup == "isnull":
        return {spec.path: None} if _flag(raw) else {spec.path: {"$ne": None}}
    if lookup == "in":
        return {spec.path: {"$in": [coerce(v) for v in _as_list(raw)]}}
    if lookup == "range":
        bounds = _as_list(raw)
        if len(bounds) != 2:
            raise ValueError("two values: low,high")
        return {spec.path: {"$gte": coerce(bounds[0]), "$lte": coerce(bounds[1])}}
    if lookup in ORDER_LOOKUPS:
        return {spec.path: {f"${lookup}": coerce(raw)}}
    if lookup in TEXT_LOOKUPS and lookup != "exact":
        if spec.kind != "str":
            raise ValueError(f"`{lookup}` applies to text fields")
        return {spec.path: _text_clause(lookup, str(raw))}
    return {spec.path: coerce(raw)}


def filter_clause(neo_type: NeoType, key: str, raw: Any) -> dict[str, Any]:
    """One `field[__lookup]=value` pair as a MongoDB filter; a 400 names what is wrong."""
    name, _, lookup = key.partition("__")
    lookup = lookup or "exact"
    spec = field_spec(neo_type, name)
    if spec is None:
        raise InvalidFilter(f"{neo_type.name} has no field {name!r} to filter on.", details={"field": name})
    if lookup not in LOOKUPS:
        raise InvalidFilter(f"Unknown lookup {lookup!r} in {key!r}; use one of {', '.join(LOOKUPS)}.",
                            details={"lookup": lookup})
    try:
        return lookup_clause(spec, lookup, raw)
    except ValueError as exc:
        raise InvalidFilter(f"{key}: expected {exc}.", details={"field": key}) from None
