"""Storage quotas for NEO array data (`ARRAY_QUOTA_BYTES`, 0 = unlimited), on shared/quota.py.

A user's counter (collection `array_quota`) is the bytes of array data of the live objects they
own: the sum of those objects' `size`. The owner of an object pays for its arrays, whoever writes
them (a collaborator replacing a signal counts against the owner, whose object it stays):

- create (JSON data, .npy parts, and conversions, which create as the uploader through the same
  API): the new arrays' bytes are reserved before anything is written, and given back if the
  create then fails;
- array replacement on update: the growth is reserved before the new file is written, a shrink
  is given back once the update is saved;
- delete: the object's bytes are given back.

Counters are kept with or without a limit, so that setting one later starts from true figures.
A user without a counter yet (objects stored before counting began) is counted once from their
documents at their first reservation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from pymongo.errors import DuplicateKeyError

from services.neo.schema import NEO_TYPES
from services.neo.store import LIVE, NeoStore
from shared.quota import Quota, QuotaExceeded

COUNTERS = "array_quota"


def array_bytes(descriptor: Mapping[str, Any] | None) -> int:
    """The bytes of an object version's arrays (its own `size`)."""
    if not descriptor:
        return 0
    return sum(int(info["nbytes"]) for info in descriptor["fields"].values())


@dataclass(frozen=True)
class ArrayQuota:
    store: NeoStore
    limit: int  # bytes per user; 0 = unlimited

    def __post_init__(self) -> None:
        if self.limit < 0:
            raise ValueError(f"ARRAY_QUOTA_BYTES must be 0 (no quota) or a number of bytes, not {self.limit}")

    @property
    def quota(self) -> Quota:
        return Quota(self.store.db[COUNTERS], self.limit, what="array storage")

    def reserve(self, *, owner: int, nbytes: int, owner_name: str | None = None) -> None:
        """Count `nbytes` more for `owner`, or 507 `quota_exceeded` with nothing counted.
        `owner_name` when the owner is not the caller, so that the refusal says whose quota it is."""
        if nbytes <= 0:
            return
        self._start_counter(owner)
        try:
            self.quota.reserve(owner, nbytes)
        except QuotaExceeded as exc:
            if owner_name:
                exc.message = (f"The array storage quota of {owner_name}, who owns this object, does not "
                               f"leave room for {nbytes} more bytes.")
            raise

    def release(self, *, owner: int, nbytes: int) -> None:
        self.quota.release(owner, nbytes)

    def _start_counter(self, owner: int) -> None:
        """Start a missing counter from the owner's stored objects (one indexed query per type)."""
        counters = self.store.db[COUNTERS]
        if counters.find_one({"_id": owner}, {"_id": 1}) is not None:
            return
        stored = sum(int(doc.get("size") or 0)
                     for neo_type in NEO_TYPES.values()
                     for doc in self.store.collection(neo_type).find({"owner": owner, **LIVE, "size": {"$gt": 0}},
                                                                     {"size": 1}))
        try:
            counters.insert_one({"_id": owner, "used": stored})
        except DuplicateKeyError:
            pass  # counted by a concurrent request
