"""JSON responses in the seeds' shapes (DESIGN.md section 7)."""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Callable, Iterable, Mapping

import orjson
from flask import Response

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def format_datetime(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value.strftime(DATE_FORMAT)
    return value.strftime("%Y-%m-%d")


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return format_datetime(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(payload: Any) -> bytes:
    return orjson.dumps(payload, default=_default, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_PASSTHROUGH_DATETIME)


def json_response(payload: Any, status: int = 200, *, headers: Mapping[str, str] | None = None) -> Response:
    return Response(dumps(payload), status=status, mimetype="application/json", headers=dict(headers or {}))


def message(text: str, message_type: str, *, logged_in_as: str | None, **extra: Any) -> dict[str, Any]:
    return {"message": text, "message_type": message_type, "logged_in_as": logged_in_as, **extra}


def object_list(
    *,
    model: str,
    objects: Iterable[Mapping[str, Any]],
    permalink: Callable[[Mapping[str, Any]], str],
    logged_in_as: str | None,
    offset: int = 0,
    total: int | None = None,
    text: str | None = None,
    message_type: str | None = None,
) -> dict[str, Any]:
    """The datafile/section list envelope of seed 000: model, fields and permalink per object."""
    selected = [{"model": model, "fields": dict(obj), "permalink": permalink(obj)} for obj in objects]
    body = message(
        text or "Here is the list of requested objects.", message_type or "object_selected", logged_in_as=logged_in_as
    )
    body["objects_selected"] = len(selected)
    body["selected"] = selected
    body["selected_range"] = [offset, offset + len(selected) - 1] if selected else None
    if total is not None:
        body["object_total"] = total
    return body


def neo_list(
    *, neo_ids: list[str], total: int, selected_as_of: int, logged_in_as: str | None
) -> dict[str, Any]:
    """The NEO list envelope of seed 001: ids plus totals for paging."""
    body = message("Here is the list of requested objects.", "object_selected", logged_in_as=logged_in_as)
    body.update(
        selected=neo_ids,
        object_total=total,
        object_selected=len(neo_ids),
        selected_as_of=selected_as_of,
    )
    return body
