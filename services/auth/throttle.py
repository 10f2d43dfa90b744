"""Failed-login throttling per username and per client address, in fixed windows."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from pymongo.collection import Collection


@dataclass(frozen=True)
class ThrottleRule:
    kind: str  # "user" or "ip"
    limit: int
    window_seconds: int


def _key(rule: ThrottleRule, value: str) -> str:
    return f"{rule.kind}:{value.lower()}"


def seconds_blocked(failures: Collection, rule: ThrottleRule, value: str, *, now: datetime) -> int:
    """How long `value` must still wait before it may try again (0 if it may try now)."""
    record = failures.find_one({"_id": _key(rule, value)})
    if not record or record["count"] < rule.limit:
        return 0
    window_end = _aware(record["window_start"]) + timedelta(seconds=rule.window_seconds)
    remaining = (window_end - now).total_seconds()
    return max(0, math.ceil(remaining))


def record_failure(failures: Collection, rule: ThrottleRule, value: str, *, now: datetime) -> None:
    key = _key(rule, value)
    window_open = now - timedelta(seconds=rule.window_seconds)
    result = failures.update_one({"_id": key, "window_start": {"$gt": window_open}}, {"$inc": {"count": 1}})
    if result.matched_count == 0:
        failures.replace_one({"_id": key}, {"count": 1, "window_start": now}, upsert=True)


def clear(failures: Collection, rule: ThrottleRule, value: str) -> None:
    failures.delete_one({"_id": _key(rule, value)})


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
