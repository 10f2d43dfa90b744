"""Login throttling: every attempt is counted before its password is checked.

Two records limit password guessing:

- per username and client address (`BackoffRule`): `free_attempts` attempts, then each further
  attempt waits an exponentially growing lock (base, 2 x base, 4 x base, ... at most
  `max_seconds`). Failures of a stranger at other addresses never slow the account's owner down,
  and no lock lasts longer than `max_seconds`;
- per client address (`WindowRule`): at most `limit` attempts per fixed window, whatever the
  usernames, against spraying one password over many accounts.

A client address is an IPv4 address or an IPv6 /64 (`client_network`).

Each record is changed by compare-and-swap on a fresh `claim` token: of concurrent attempts, each
one sees the count the previous one left, so a burst of simultaneous logins cannot all pass one
check before any failure is written. A successful login forgets its username+address record and
gives its address attempt back; a refused attempt also gives the address attempt back.
"""
from __future__ import annotations

import ipaddress

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

# Rounds of compare-and-swap before an attempt under heavy contention is refused (never let through).
MAX_SWAP_ROUNDS = 50
# Usernames are at most 150 characters; a longer one cannot exist, but must not make huge keys.
MAX_KEY_USERNAME_LENGTH = 200
UNKNOWN_ADDRESS = "unknown"


@dataclass(frozen=True)
class BackoffRule:
    free_attempts: int
    base_seconds: float
    max_seconds: float
    # How long a record is kept after its lock ends (or after its last attempt, with no lock).
    forget_after_seconds: int

    def lock_seconds(self, attempts: int) -> float:
        """How long the next attempt must wait after the `attempts`-th one (0: it need not)."""
        if attempts < self.free_attempts:
            return 0.0
        doublings = min(attempts - self.free_attempts, 32)
        return min(float(self.max_seconds), self.base_seconds * 2**doublings)


@dataclass(frozen=True)
class WindowRule:
    limit: int
    window_seconds: int


class Throttled(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Claim:
    """What one counted attempt took, so that a success (or a refusal) can give it back."""

    backoff_key: str
    address_key: str | None
    address_window_start: datetime | None


def client_network(client_ip: str | None) -> str:
    """What counts as one client: an IPv4 address, or an IPv6 /64 (one subscriber gets a whole /64,
    so counting single IPv6 addresses would give an attacker billions of fresh budgets)."""
    if not client_ip:
        return UNKNOWN_ADDRESS
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return client_ip[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def backoff_key(username: str, client_ip: str | None) -> str:
    return f"user_ip:{username.lower()[:MAX_KEY_USERNAME_LENGTH]}|{client_network(client_ip)}"


def address_key(client_ip: str) -> str:
    return f"ip:{client_network(client_ip)}"


def claim_attempt(
    attempts: Collection, *, backoff: BackoffRule, per_address: WindowRule, username: str, client_ip: str | None,
    now: datetime,
) -> Claim:
    """Count one login attempt, or raise Throttled with the seconds to wait."""
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as MongoDB stores it, to match it again
    address = address_key(client_ip) if client_ip else None
    window_start = _claim_window(attempts, per_address, address, now=now) if address else None
    key = backoff_key(username, client_ip)
    try:
        _claim_backoff(attempts, backoff, key, now=now)
    except Throttled:
        if address and window_start:
            _give_back(attempts, address, window_start)
        raise
    return Claim(key, address, window_start)


def forget_success(attempts: Collection, claim: Claim) -> None:
    """The attempt was the account's owner: forget their failures and give the address attempt back."""
    attempts.delete_one({"_id": claim.backoff_key})
    if claim.address_key and claim.address_window_start:
        _give_back(attempts, claim.address_key, claim.address_window_start)


def purge_expired(attempts: Collection, *, now: datetime) -> int:
    return attempts.delete_many({"expires_at": {"$lt": now}}).deleted_count


def _claim_backoff(attempts: Collection, rule: BackoffRule, key: str, *, now: datetime) -> None:
    def next_state(record: dict | None) -> dict[str, Any]:
        if record and _aware(record["locked_until"]) > now:
            raise Throttled(_seconds_until(record["locked_until"], now))
        count = (record["attempts"] if record else 0) + 1
        locked_until = now + timedelta(seconds=rule.lock_seconds(count))
        return {"attempts": count, "locked_until": locked_until,
                "expires_at": locked_until + timedelta(seconds=rule.forget_after_seconds)}

    _swap(attempts, key, next_state, now=now)


def _claim_window(attempts: Collection, rule: WindowRule, key: str, *, now: datetime) -> datetime:
    def next_state(record: dict | None) -> dict[str, Any]:
        if record is None:
            return {"attempts": 1, "window_start": now, "expires_at": now + timedelta(seconds=rule.window_seconds)}
        if record["attempts"] >= rule.limit:
            raise Throttled(_seconds_until(record["expires_at"], now))
        return {"attempts": record["attempts"] + 1, "window_start": record["window_start"],
                "expires_at": record["expires_at"]}

    return _aware(_swap(attempts, key, next_state, now=now)["window_start"])


def _swap(attempts: Collection, key: str, next_state: Callable[[dict | None], dict], *, now: datetime) -> dict:
    """Write next_state(current record) if nobody changed the record meanwhile; else read again.

    A record past its `expires_at` counts as absent (the purge may not have run yet)."""
    for _ in range(MAX_SWAP_ROUNDS):
        record = attempts.find_one({"_id": key})
        live = record if record and _aware(record["expires_at"]) > now else None
        state = {**next_state(live), "claim": uuid.uuid4().hex}
        if record is None:
            try:
                attempts.insert_one({"_id": key, **state})
                return state
            except DuplicateKeyError:
                continue
        if attempts.update_one({"_id": key, "claim": record.get("claim")}, {"$set": state}).matched_count:
            return state
    raise Throttled(1)


def _give_back(attempts: Collection, key: str, window_start: datetime) -> None:
    # A new claim token makes a concurrent swap that read the old count start again.
    attempts.update_one({"_id": key, "window_start": window_start, "attempts": {"$gt": 0}},
                        {"$inc": {"attempts": -1}, "$set": {"claim": uuid.uuid4().hex}})


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((_aware(moment) - now).total_seconds()))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
