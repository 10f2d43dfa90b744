"""Event envelopes (DESIGN.md section 5).

Every message on the bus is one JSON object:
`{"event_id": uuid4 str, "type": routing key, "occurred_at": ISO-8601 UTC, "producer": service, "payload": {...}}`.
The routing key is `<service>.<entity>.<past-tense verb>` (e.g. `auth.friendship.added`).

Payload contracts belong to the producing service: it declares each event as a small frozen
dataclass with a `routing_key` class variable, next to its code, and turns it into an envelope
with `envelope_for(event, producer=...)`.
"""
from __future__ import annotations

import dataclasses
import enum
import json
import re
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Mapping

ROUTING_KEY_ATTR = "routing_key"
# At least three dot-separated words, no wildcards: <service>.<entity>.<verb>[.<more>].
_ROUTING_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){2,}$")


class MalformedEvent(ValueError):
    """A message body that is not an event envelope."""


def validate_routing_key(key: Any) -> str:
    if not isinstance(key, str) or not _ROUTING_KEY.match(key):
        raise ValueError(f"an event type must look like <service>.<entity>.<verb>, got {key!r}")
    return key


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"an event payload cannot hold a {type(value).__name__}")


def encode_envelope(envelope: Mapping[str, Any]) -> bytes:
    return json.dumps(envelope, default=_json_default, separators=(",", ":"), ensure_ascii=False).encode()


def _plain_json(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload as it will arrive: JSON types only, so the stored outbox equals what is published."""
    return json.loads(encode_envelope(payload))


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def make_envelope(
    event_type: str,
    payload: Mapping[str, Any] | None = None,
    *,
    producer: str,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """A new envelope with a fresh uuid4 `event_id` and the current UTC time."""
    if not isinstance(producer, str) or not producer:
        raise ValueError("an event needs its producer (the service name)")
    if payload is not None and not isinstance(payload, Mapping):
        raise TypeError(f"an event payload must be a mapping, got {type(payload).__name__}")
    when = (
        utc_now_iso()
        if occurred_at is None
        else (occurred_at if occurred_at.tzinfo else occurred_at.replace(tzinfo=timezone.utc))
        .astimezone(timezone.utc)
        .isoformat(timespec="milliseconds")
    )
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "type": validate_routing_key(event_type),
        "occurred_at": when,
        "producer": producer,
        "payload": _plain_json(payload or {}),
    }


def routing_key_of(event: Any) -> str:
    """The routing key a payload dataclass (or its class) declares."""
    key = getattr(event, ROUTING_KEY_ATTR, None)
    if key is None:
        name = event.__name__ if isinstance(event, type) else type(event).__name__
        raise TypeError(f"{name} has no `{ROUTING_KEY_ATTR}: ClassVar[str]`")
    return validate_routing_key(key)


def envelope_for(event: Any, *, producer: str, event_id: str | None = None) -> dict[str, Any]:
    """The envelope of a payload dataclass instance; its fields (dataclasses.asdict) are the payload."""
    if not dataclasses.is_dataclass(event) or isinstance(event, type):
        raise TypeError(f"envelope_for wants a dataclass instance, got {type(event).__name__}")
    return make_envelope(routing_key_of(event), dataclasses.asdict(event), producer=producer, event_id=event_id)


def decode_envelope(body: bytes | str) -> dict[str, Any]:
    """Parse a message body; MalformedEvent unless it is a JSON object with a string `event_id`."""
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from None
    if not isinstance(envelope, dict):
        raise MalformedEvent(f"not a JSON object but {type(envelope).__name__}")
    if not isinstance(envelope.get("event_id"), str) or not envelope["event_id"]:
        raise MalformedEvent("no event_id")
    if "payload" in envelope and not isinstance(envelope["payload"], dict):
        raise MalformedEvent("payload is not an object")
    return envelope
