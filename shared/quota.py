"""Per-user storage quotas: a byte counter per owner, reserved before bytes are stored.

A service keeps one counter document per user in a collection of its own (`{_id: user_id,
used: bytes}`). `reserve` adds to it only while the total stays within the limit, in one
conditional update, so concurrent uploads cannot both pass the check; `release` gives bytes back
(a failed upload, a deleted object).

A limit of 0 means "no quota".
"""
from __future__ import annotations

from dataclasses import dataclass

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from shared.errors import ApiError


class QuotaExceeded(ApiError):
    http_status, message_type = 507, "quota_exceeded"
    message = "Your storage quota is used up; delete something first."


@dataclass(frozen=True)
class Quota:
    counters: Collection
    limit: int  # bytes per user; 0 = unlimited
    what: str = "storage"  # how error messages name it ("datafile storage", "array storage")

    def used(self, owner: int) -> int:
        doc = self.counters.find_one({"_id": owner}, {"used": 1})
        return int(doc["used"]) if doc else 0

    def remaining(self, owner: int) -> int | None:
        """Bytes `owner` may still store, or None when there is no quota."""
        if not self.limit:
            return None
        return max(0, self.limit - self.used(owner))

    def require_room(self, owner: int, nbytes: int) -> None:
        """Raise QuotaExceeded when `nbytes` more would not fit now; counts nothing (a check before
        a transfer starts; `reserve` still decides)."""
        remaining = self.remaining(owner)
        if remaining is not None and nbytes > remaining:
            raise self._exceeded(owner, nbytes)

    def reserve(self, owner: int, nbytes: int) -> None:
        """Count `nbytes` more for `owner`, or raise QuotaExceeded and count nothing."""
        if nbytes <= 0:
            return
        if not self.limit:
            self.counters.update_one({"_id": owner}, {"$inc": {"used": nbytes}}, upsert=True)
            return
        if nbytes > self.limit:
            raise self._exceeded(owner, nbytes)
        self._ensure(owner)
        result = self.counters.update_one({"_id": owner, "used": {"$lte": self.limit - nbytes}},
                                          {"$inc": {"used": nbytes}})
        if result.modified_count != 1:
            raise self._exceeded(owner, nbytes)

    def release(self, owner: int, nbytes: int) -> None:
        """Count `nbytes` less for `owner`, never below zero (bytes stored before counting began
        may be given back without ever having been counted)."""
        if nbytes > 0:
            self.counters.update_one({"_id": owner},
                                     [{"$set": {"used": {"$max": [0, {"$subtract": ["$used", nbytes]}]}}}])

    def _ensure(self, owner: int) -> None:
        if self.counters.find_one({"_id": owner}, {"_id": 1}) is None:
            try:
                self.counters.insert_one({"_id": owner, "used": 0})
            except DuplicateKeyError:
                pass  # created by a concurrent call

    def _exceeded(self, owner: int, nbytes: int) -> QuotaExceeded:
        used = self.used(owner)
        return QuotaExceeded(
            f"Your {self.what} quota is {self.limit} bytes; {used} are used and this needs {nbytes} more. "
            "Delete something first, or ask an operator for a larger quota.",
            details={"quota_bytes": self.limit, "used_bytes": used, "requested_bytes": nbytes},
        )
