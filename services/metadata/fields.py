"""Request bodies of sections, properties and values checked and turned into changes (no I/O).

Unknown fields are a 400 naming them; the read-only fields a GET returns are ignored, so a
fetched object's `fields` can be posted back.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from services.metadata.dtypes import DtypeError, normalise_dtype
from services.metadata.ids import InvalidId, parse_id, parse_optional_section
from shared.errors import BadRequest

MAX_NAME = 1_000
MAX_TEXT = 100_000
MAX_POSITION = 1_000_000_000


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

SECTION_TEXT = ("description", "type", "link", "repository", "mapping", "reference")
SECTION_READ_ONLY = frozenset({
    "id", "owner", "author", "safety_level", "shared_with", "date_created", "last_modified", "datafiles",
    "subsections", "properties", "permalink", "depth", "model",
})
PROPERTY_TEXT = (
    "description", "type", "unit", "definition", "mapping", "dependency", "dependency_value", "reference",
    "value_origin",
)
PROPERTY_READ_ONLY = frozenset({
    "id", "owner", "author", "safety_level", "date_created", "last_modified", "permalink", "model",
})
VALUE_READ_ONLY = frozenset({
    "id", "section_id", "dtype", "unit", "property_name", "owner", "date_created", "last_modified", "permalink",
    "model",
})


class InvalidFields(BadRequest):
    message_type = "invalid_fields"


def _require_object(body: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise BadRequest(f"The body must be a JSON object with the {what}'s fields.", message_type="invalid_json")
    return body


def _unknown(body: Mapping[str, Any], allowed: set[str], read_only: frozenset[str], what: str) -> None:
    unknown = sorted(key for key in body if key not in allowed and key not in read_only)
    if unknown:
        raise BadRequest(
            f"A {what} has no field {', '.join(repr(k) for k in unknown)}; its fields are {', '.join(sorted(allowed))}.",
            message_type="unknown_fields",
            details={"unknown": unknown},
        )


def _text(value: Any, name: str, problems: dict[str, str], limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        problems[name] = "must be text (or null)"
        return None
    if len(value) > limit:
        problems[name] = f"is limited to {limit} characters"
        return None
    return value


def _name(value: Any, problems: dict[str, str], key: str = "name") -> str | None:
    if not isinstance(value, str) or not value.strip():
        problems[key] = "must be non-empty text"
        return None
    if len(value) > MAX_NAME:
        problems[key] = f"is limited to {MAX_NAME} characters"
        return None
    return value.strip()


def _position(value: Any, problems: dict[str, str], key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_POSITION:
        problems[key] = f"must be a whole number from 0 to {MAX_POSITION}"
        return None
    return value


def _raise(problems: dict[str, str], what: str) -> None:
    if problems:
        listed = "; ".join(f"`{k}` {v}" for k, v in problems.items())
        raise InvalidFields(f"The {what} is not valid: {listed}.", details=problems)


# --- sections ---------------------------------------------------------------------------------

@dataclass
class SectionChanges:
    fields: dict[str, Any] = field(default_factory=dict)
    parent: Any = MISSING  # int, None (root) or MISSING (not given)
    tree_position: int | None = None

    @property
    def is_empty(self) -> bool:
        return not self.fields and self.parent is MISSING and self.tree_position is None


def parse_section_body(body: Any, *, creating: bool, allow_empty: bool = False) -> SectionChanges:
    """`title` and `name` are the same field (`name` is canonical); `parent_section` takes an id or null."""
    body = _require_object(body, "section")
    allowed = {"name", "title", "parent_section", "tree_position", *SECTION_TEXT}
    _unknown(body, allowed, SECTION_READ_ONLY, "section")
    problems: dict[str, str] = {}
    changes = SectionChanges()
    names = [body[k] for k in ("name", "title") if k in body]
    if len(names) == 2 and names[0] != names[1]:
        problems["title"] = "differs from `name`; give one of them"
    elif names:
        name = _name(names[0], problems, "name" if "name" in body else "title")
        if name is not None:
            changes.fields["name"] = name
    elif creating and not allow_empty:
        problems["name"] = "is required (or `title`)"
    for key in SECTION_TEXT:
        if key in body:
            changes.fields[key] = _text(body[key], key, problems)
    if "parent_section" in body:
        try:
            changes.parent = parse_optional_section(body["parent_section"])
        except InvalidId as exc:
            problems["parent_section"] = str(exc)
    if "tree_position" in body:
        changes.tree_position = _position(body["tree_position"], problems, "tree_position")
    _raise(problems, "section")
    if not creating and changes.is_empty and not allow_empty:
        raise BadRequest("Nothing to update: give the fields to change.", message_type="empty_update")
    return changes


# --- properties -------------------------------------------------------------------------------

@dataclass
class PropertyChanges:
    fields: dict[str, Any] = field(default_factory=dict)
    section: int | None = None
    dtype: str | None = None
    values: list[Any] | None = None
    tree_position: int | None = None

    @property
    def is_empty(self) -> bool:
        return not self.fields and self.section is None and self.dtype is None and self.values is None \
            and self.tree_position is None


def _uncertainty(value: Any, problems: dict[str, str]) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        problems["uncertainty"] = "must be a number"
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        problems["uncertainty"] = "must be a number"
        return None
    if not math.isfinite(number):
        problems["uncertainty"] = "must be a finite number"
        return None
    return number


def parse_property_body(body: Any, *, creating: bool) -> PropertyChanges:
    """`section_id` (or `section`) names the section; `values` is a list (a single value is wrapped)."""
    body = _require_object(body, "property")
    allowed = {"name", "section_id", "section", "dtype", "values", "uncertainty", "tree_position", *PROPERTY_TEXT}
    _unknown(body, allowed, PROPERTY_READ_ONLY, "property")
    problems: dict[str, str] = {}
    changes = PropertyChanges()
    if "name" in body:
        name = _name(body["name"], problems)
        if name is not None:
            changes.fields["name"] = name
    elif creating:
        problems["name"] = "is required"
    section_keys = [k for k in ("section_id", "section") if k in body]
    if len(section_keys) == 2 and body["section_id"] != body["section"]:
        problems["section"] = "differs from `section_id`; give one of them"
    elif section_keys:
        try:
            changes.section = parse_id(body[section_keys[0]], "section")
        except InvalidId as exc:
            problems[section_keys[0]] = str(exc)
    elif creating:
        problems["section_id"] = "is required: a property belongs to a section"
    for key in PROPERTY_TEXT:
        if key in body:
            changes.fields[key] = _text(body[key], key, problems, MAX_NAME if key == "unit" else MAX_TEXT)
    if "uncertainty" in body:
        changes.fields["uncertainty"] = _uncertainty(body["uncertainty"], problems)
    if "dtype" in body and body["dtype"] not in (None, ""):
        try:
            changes.dtype = normalise_dtype(body["dtype"])
        except DtypeError as exc:
            problems["dtype"] = str(exc)
    if "values" in body:
        raw = body["values"]
        if raw is None:
            changes.values = []
        elif isinstance(raw, list):
            changes.values = [v["value"] if isinstance(v, Mapping) and "value" in v else v for v in raw]
        elif isinstance(raw, (Mapping,)):
            problems["values"] = "must be a list of values"
        else:
            changes.values = [raw]
    if "tree_position" in body:
        changes.tree_position = _position(body["tree_position"], problems, "tree_position")
    _raise(problems, "property")
    if not creating and changes.is_empty:
        raise BadRequest("Nothing to update: give the fields to change.", message_type="empty_update")
    return changes


# --- values -----------------------------------------------------------------------------------

@dataclass
class ValueChanges:
    property: int | None = None
    value: Any = MISSING
    position: int | None = None


def parse_value_body(body: Any, *, creating: bool) -> ValueChanges:
    """`property_id` (or `property`), `value`, and optionally `position` (0 = first)."""
    body = _require_object(body, "value")
    allowed = {"property_id", "property", "value", "position"}
    _unknown(body, allowed, VALUE_READ_ONLY, "value")
    problems: dict[str, str] = {}
    changes = ValueChanges()
    keys = [k for k in ("property_id", "property") if k in body]
    if len(keys) == 2 and body["property_id"] != body["property"]:
        problems["property"] = "differs from `property_id`; give one of them"
    elif keys:
        try:
            changes.property = parse_id(body[keys[0]], "property")
        except InvalidId as exc:
            problems[keys[0]] = str(exc)
    elif creating:
        problems["property_id"] = "is required: a value belongs to a property"
    if "value" in body:
        if body["value"] is None:
            problems["value"] = "cannot be null"
        else:
            changes.value = body["value"]
    elif creating:
        problems["value"] = "is required"
    if "position" in body:
        changes.position = _position(body["position"], problems, "position")
    _raise(problems, "value")
    if not creating and changes.value is MISSING and changes.position is None and changes.property is None:
        raise BadRequest("Nothing to update: give `value` or `position`.", message_type="empty_update")
    return changes
