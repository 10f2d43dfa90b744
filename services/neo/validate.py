"""Parsing and validating the body of a create or update request against the type tables.

Every problem is collected, so that one 400 names all of them (`details`: field -> reason).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

import numpy as np

from services.neo.ids import InvalidId, parse_id
from services.neo.npy import NpyStream
from services.neo.schema import COMMON_FIELDS, Attribute, DataField, NeoType
from services.neo.units import UnitError, normalise_unit
from shared.errors import BadRequest

# Fields a client may send back from a GET response; they are the server's to set, so ignored.
READ_ONLY_FIELDS = frozenset(
    {"neo_id", "author", "date_created", "last_modified", "size", "message", "message_type", "logged_in_as", "owner"}
)
# A list of metadata value ids: labels of the object (services/neo/labels.py), never an attribute.
METADATA_FIELD = "metadata"
MAX_METADATA = 1_000
MAX_STRING = 10_000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f",
                "%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y")


@dataclass
class ArrayInput:
    units: str
    source: np.ndarray | NpyStream

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.source.shape)

    @property
    def nbytes(self) -> int:
        """The bytes it takes once stored (the stored dtype keeps the source's item size)."""
        return int(self.source.nbytes)


@dataclass
class Changes:
    attributes: dict[str, Any] = field(default_factory=dict)
    scalars: dict[str, dict[str, Any]] = field(default_factory=dict)
    arrays: dict[str, ArrayInput] = field(default_factory=dict)
    parents: dict[str, int | None] = field(default_factory=dict)
    common: dict[str, Any] = field(default_factory=dict)
    metadata: list[int] | None = None  # value ids when `metadata` was given: the object's labels

    @property
    def is_empty(self) -> bool:
        return not (self.attributes or self.scalars or self.arrays or self.parents or self.common) and self.metadata is None

    @property
    def array_bytes(self) -> int:
        return sum(array.nbytes for array in self.arrays.values())


class _Problems(dict):
    def check(self) -> None:
        if self:
            raise BadRequest("Some fields are not valid.", message_type="invalid_fields", details=dict(self))


def parse_datetime(raw: Any) -> datetime:
    if isinstance(raw, str):
        for fmt in DATE_FORMATS:
            try:
                return datetime.strptime(raw.strip(), fmt).replace(tzinfo=timezone.utc)
            except ValueError:
                continue
    raise ValueError("a date like '2011-05-10 14:30:00', '2011-05-10' or '10/05/2011'")


def _attribute_value(attribute: Attribute, raw: Any) -> Any:
    if attribute.kind == "str":
        if not isinstance(raw, str):
            raise ValueError("a string")
        if len(raw) > MAX_STRING:
            raise ValueError(f"at most {MAX_STRING} characters")
        if attribute.required and not raw.strip():
            raise ValueError("required; it cannot be empty")
        return raw
    if attribute.kind == "int":
        if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
            raw = int(raw)
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueError("an integer")
        if not INT64_MIN <= raw <= INT64_MAX:
            raise ValueError("an integer that fits in 64 bits")
        return raw
    return parse_datetime(raw)


def _number(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise ValueError("`data` must be a finite number")
    return float(raw)


def _units(raw: Mapping[str, Any], data_field: DataField) -> str:
    try:
        return normalise_unit(raw.get("units"), data_field.domain)
    except UnitError as exc:
        raise ValueError(str(exc)) from None


def _holds_bool(data: Any) -> bool:
    if isinstance(data, list):
        return any(_holds_bool(item) for item in data)
    return isinstance(data, bool)


def _json_array(data: Any, data_field: DataField) -> np.ndarray:
    try:
        array = np.asarray(data)
    except (ValueError, OverflowError):
        raise ValueError("`data` must be a list of numbers with a regular shape") from None
    if array.dtype.kind not in "iuf" or array.dtype == np.bool_ or _holds_bool(data):
        raise ValueError("`data` must hold numbers only")
    _check_ndim(array.ndim, data_field)
    return array.astype(np.float64, copy=False)


def _check_ndim(ndim: int, data_field: DataField) -> None:
    if data_field.kind == "array" and ndim != 1:
        raise ValueError("`data` must be a flat list of numbers")
    if data_field.kind == "waveforms" and ndim not in (2, 3):
        raise ValueError("`data` must be spikes x samples (or spikes x channels x samples)")


def _data_field(data_field: DataField, raw: Any, upload: Any) -> tuple[str, Any]:
    if raw is None and upload is None:
        raise ValueError("give {\"units\": ..., \"data\": ...}")
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ValueError("must be an object {\"units\": ..., \"data\": ...}")
    unknown = set(raw) - {"units", "data"}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}; give units and data")
    units = _units(raw, data_field)
    if not data_field.is_array:
        if "data" not in raw:
            raise ValueError("`data` is missing")
        return "scalar", {"units": units, "data": _number(raw["data"]), "base": _number(raw["data"]) * data_field.domain.factor(units)}
    if upload is not None:
        if "data" in raw:
            raise ValueError("give the data either in JSON or as an .npy part, not both")
        stream = NpyStream(upload)
        if stream.dtype.kind not in "iuf" or stream.dtype.itemsize > 8:
            raise ValueError(f"the .npy part holds {stream.dtype}; give integers or floats")
        _check_ndim(len(stream.shape), data_field)
        return "array", ArrayInput(units, stream)
    if "data" not in raw:
        raise ValueError("`data` is missing (or send it as an .npy part named after the field)")
    return "array", ArrayInput(units, _json_array(raw["data"], data_field))


def _parent(parent_type: str, raw: Any) -> int | None:
    if raw is None:
        return None
    try:
        return parse_id(raw, expected_type=parent_type)[1]
    except InvalidId as exc:
        raise ValueError(str(exc)) from None


def _common(name: str, raw: Any) -> Any:
    if name == "annotations":
        if raw is not None and not isinstance(raw, Mapping):
            raise ValueError("an object of key-value pairs")
        return dict(raw or {})
    if raw is not None and not isinstance(raw, str):
        raise ValueError("a string")
    return raw


def _metadata(raw: Any) -> list[int]:
    """`metadata`: a list of value ids (`value_12` or 12) -> distinct numbers, in the given order."""
    from services.neo.labels import InvalidLabel, parse_value_id  # labels imports the service, which imports this

    if not isinstance(raw, list):
        raise ValueError("a list of metadata value ids like 'value_12'")
    if len(raw) > MAX_METADATA:
        raise ValueError(f"at most {MAX_METADATA} value ids")
    numbers: list[int] = []
    for index, item in enumerate(raw):
        try:
            numbers.append(parse_value_id(item, field=f"{METADATA_FIELD}[{index}]"))
        except InvalidLabel as exc:
            raise ValueError(exc.message) from None
    return list(dict.fromkeys(numbers))


def parse_changes(
    neo_type: NeoType, body: Any, uploads: Mapping[str, Any] | None = None, *, creating: bool
) -> Changes:
    if not isinstance(body, Mapping):
        raise BadRequest("The body must be a JSON object.", message_type="invalid_json")
    uploads = uploads or {}
    problems = _Problems()
    changes = Changes()
    for name, raw in body.items():
        try:
            _parse_field(neo_type, name, raw, uploads.get(name), changes)
        except ValueError as exc:
            problems[name] = str(exc)
        except KeyError:
            problems[name] = _unknown_reason(neo_type, name)
    for name in uploads:
        data_field = neo_type.data_field(name)
        if data_field is None or not data_field.is_array:
            problems[name] = f"{neo_type.name} has no array field {name!r} for an .npy part"
        elif name not in body:
            problems[name] = "give its units in the JSON part, like {\"%s\": {\"units\": ...}}" % name
    if creating:
        _check_required(neo_type, changes, problems)
    problems.check()
    return changes


def _parse_field(neo_type: NeoType, name: str, raw: Any, upload: Any, changes: Changes) -> None:
    if name in READ_ONLY_FIELDS:
        return
    if (attribute := neo_type.attribute(name)) is not None:
        if raw is None and not attribute.required:
            changes.attributes[name] = None
        elif raw is None:
            raise ValueError("required; it cannot be null")
        else:
            changes.attributes[name] = _attribute_value(attribute, raw)
    elif (data_field := neo_type.data_field(name)) is not None:
        if raw is None and upload is None and not data_field.required:
            changes.scalars[name] = None  # type: ignore[assignment]  # clears an optional field
            return
        kind, value = _data_field(data_field, raw, upload)
        (changes.arrays if kind == "array" else changes.scalars)[name] = value
    elif name in neo_type.parents:
        changes.parents[name] = _parent(name, raw)
    elif name in COMMON_FIELDS:
        changes.common[name] = _common(name, raw)
    elif name == METADATA_FIELD:
        changes.metadata = _metadata(raw)
    else:
        raise KeyError(name)


def _unknown_reason(neo_type: NeoType, name: str) -> str:
    if name in neo_type.children:
        return f"{name} is a child list; link a child by setting its parent ({name}.{neo_type.name})"
    known = [a.name for a in neo_type.attributes] + [d.name for d in neo_type.data_fields] + list(neo_type.parents)
    return f"{neo_type.name} has no field {name!r}; it has {', '.join(known + list(COMMON_FIELDS) + [METADATA_FIELD])}"


def _check_required(neo_type: NeoType, changes: Changes, problems: _Problems) -> None:
    for attribute in neo_type.attributes:
        if attribute.required and attribute.name not in changes.attributes and attribute.name not in problems:
            problems[attribute.name] = "required"
    for data_field in neo_type.data_fields:
        given = changes.arrays if data_field.is_array else changes.scalars
        if data_field.required and given.get(data_field.name) is None and data_field.name not in problems:
            problems[data_field.name] = "required, with its units"
