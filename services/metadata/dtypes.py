"""odML data types: validating a property's `dtype` and normalising its values (no I/O).

The dtypes are odML's (`odml.DType` plus `N-tuple`): string, text, int, float, boolean, date,
datetime, time, url, person and e.g. `3-tuple`. Values are stored in a JSON-friendly canonical form:

| dtype             | stored as                         | accepted on input                               |
|-------------------|-----------------------------------|-------------------------------------------------|
| int               | 64-bit integer                    | integers, integral floats, "12"                 |
| float             | number                            | numbers, "1.5", "1e-3" (not NaN or infinity)    |
| boolean           | true / false                      | booleans, "true"/"false"/"t"/"f"/"1"/"0", 0, 1   |
| string, text      | string                            | strings, numbers (turned into text)             |
| person            | non-empty string                  | strings                                         |
| url               | string with a scheme              | "https://...", "ftp://...", "mailto:..."        |
| date              | "YYYY-MM-DD"                      | that                                            |
| datetime          | "YYYY-MM-DD HH:MM:SS"             | that, or with "T" between date and time         |
| time              | "HH:MM:SS"                        | that                                            |
| N-tuple           | "(a;b;c)" with exactly N items    | that, or a JSON list of N scalars               |
"""
from __future__ import annotations

import math
import re
from datetime import date, datetime, time
from typing import Any

SIMPLE_DTYPES = ("string", "text", "int", "float", "boolean", "date", "datetime", "time", "url", "person")
ALIASES = {"str": "string", "bool": "boolean"}
DATE_FORMAT, DATETIME_FORMAT, TIME_FORMAT = "%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%H:%M:%S"
_TUPLE = re.compile(r"^([1-9][0-9]{0,3})-tuple$")
_URL = re.compile(r"^[a-z][a-z0-9+.\-]*:\S+$", re.IGNORECASE)
_INT_TEXT = re.compile(r"^[+-]?\d+$")
_TRUE, _FALSE = ("true", "t", "1", "yes"), ("false", "f", "0", "no")
MAX_TEXT = 100_000
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


class DtypeError(ValueError):
    """A dtype odML does not know, or a value that does not fit its dtype."""


def normalise_dtype(raw: Any) -> str:
    """The canonical spelling of an odML dtype; DtypeError for anything else."""
    if not isinstance(raw, str) or not raw.strip():
        raise DtypeError(f"{raw!r} is not an odML dtype")
    text = raw.strip().lower()
    text = ALIASES.get(text, text)
    if text in SIMPLE_DTYPES or _TUPLE.match(text):
        return text
    raise DtypeError(
        f"{raw!r} is not an odML dtype; use one of {', '.join(SIMPLE_DTYPES)} or N-tuple (e.g. 3-tuple)"
    )


def tuple_size(dtype: str) -> int | None:
    match = _TUPLE.match(dtype)
    return int(match.group(1)) if match else None


def infer_dtype(value: Any) -> str:
    """The dtype odML would infer from a first value (bool before int: True is an int in Python)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str) and "\n" in value:
        return "text"
    return "string"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int(value: Any) -> int:
    if _is_number(value):
        if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
            raise DtypeError(f"{value!r} is not a whole number")
        number = int(value)
    elif isinstance(value, str) and _INT_TEXT.match(value.strip()) and len(value.strip()) <= 30:
        number = int(value.strip())
    else:
        raise DtypeError(f"{value!r} is not an integer")
    if not INT_MIN <= number <= INT_MAX:
        raise DtypeError(f"{value!r} is beyond the 64-bit integers MongoDB stores; use dtype float or string")
    return number


def _float(value: Any) -> float:
    if _is_number(value):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise DtypeError(f"{value!r} is not a number") from None
    else:
        raise DtypeError(f"{value!r} is not a number")
    if not math.isfinite(number):
        raise DtypeError(f"{value!r} is not a finite number")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if _is_number(value) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise DtypeError(f"{value!r} is not a boolean (true or false)")


def _text(value: Any, dtype: str) -> str:
    if _is_number(value):
        value = repr(value) if isinstance(value, float) else str(value)
    if not isinstance(value, str):
        raise DtypeError(f"{value!r} is not text")
    if len(value) > MAX_TEXT:
        raise DtypeError(f"a {dtype} value is limited to {MAX_TEXT} characters")
    if dtype == "string" and "\n" in value:
        raise DtypeError("a string value is one line; use dtype text for several lines")
    return value


def _when(value: Any, fmt: str, what: str, example: str) -> str:
    if isinstance(value, datetime) and fmt == DATETIME_FORMAT:
        return value.strftime(fmt)
    if isinstance(value, date) and not isinstance(value, datetime) and fmt == DATE_FORMAT:
        return value.strftime(fmt)
    if isinstance(value, time) and fmt == TIME_FORMAT:
        return value.strftime(fmt)
    if not isinstance(value, str):
        raise DtypeError(f"{value!r} is not a {what} like {example!r}")
    text = value.strip()
    if fmt == DATETIME_FORMAT and len(text) == 19 and text[10] == "T":
        text = f"{text[:10]} {text[11:]}"
    try:
        return datetime.strptime(text, fmt).strftime(fmt)
    except ValueError:
        raise DtypeError(f"{value!r} is not a {what} like {example!r}") from None


def _tuple(value: Any, size: int) -> str:
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, str):
        text = value.strip()
        if not (text.startswith("(") and text.endswith(")")):
            raise DtypeError(f"{value!r} is not a {size}-tuple like '({';'.join(str(i) for i in range(1, size + 1))})'")
        items = [item.strip() for item in text[1:-1].split(";")]
    else:
        raise DtypeError(f"{value!r} is not a {size}-tuple")
    if len(items) != size:
        raise DtypeError(f"{value!r} has {len(items)} items, a {size}-tuple has {size}")
    parts = []
    for item in items:
        if _is_number(item):
            item = str(item)
        if not isinstance(item, str) or not item.strip() or any(c in item for c in ";()\n"):
            raise DtypeError(f"{item!r} cannot be an item of a tuple (give plain text or numbers)")
        parts.append(item.strip())
    return f"({';'.join(parts)})"


def normalise_value(value: Any, dtype: str) -> Any:
    """`value` in its stored form for `dtype` (see the table above); DtypeError when it does not fit."""
    if value is None:
        raise DtypeError("a value cannot be null")
    size = tuple_size(dtype)
    if size is not None:
        return _tuple(value, size)
    if dtype == "int":
        return _int(value)
    if dtype == "float":
        return _float(value)
    if dtype == "boolean":
        return _boolean(value)
    if dtype == "date":
        return _when(value, DATE_FORMAT, "date", "2012-03-14")
    if dtype == "datetime":
        return _when(value, DATETIME_FORMAT, "date and time", "2012-03-14 17:27:08")
    if dtype == "time":
        return _when(value, TIME_FORMAT, "time", "17:27:08")
    text = _text(value, dtype)
    if dtype == "url" and not _URL.match(text.strip()):
        raise DtypeError(f"{value!r} is not a URL with a scheme, like 'https://example.org/'")
    if dtype == "person" and not text.strip():
        raise DtypeError("a person value cannot be empty")
    return text.strip() if dtype in ("url", "person") else text


def normalise_values(values: Any, dtype: str) -> list[Any]:
    """Every value of a list; DtypeError naming the first one that does not fit, by index."""
    if not isinstance(values, list):
        raise DtypeError("`values` must be a list")
    out = []
    for index, value in enumerate(values):
        try:
            out.append(normalise_value(value, dtype))
        except DtypeError as exc:
            raise DtypeError(f"value {index}: {exc}") from None
    return out


def value_text(value: Any) -> str:
    """A stored value as lower-case text, for searching."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).lower()


def from_odml(value: Any, dtype: str) -> Any:
    """A value as python-odml holds it (date objects, tuples as lists) in our stored form."""
    if tuple_size(dtype) is not None and isinstance(value, (list, tuple)):
        return _tuple(value, tuple_size(dtype) or 0)
    return normalise_value(value, dtype)
