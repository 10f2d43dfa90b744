"""The revocation log: one entry per revoked session, numbered 1, 2, 3, ... in the order written.

The gateway keeps the revoked session ids in memory and asks for the entries after the last number
it has (`GET /internal/revocations/?after=<seq>`), so it needs every entry below a number it has
seen to be visible already. A counter incremented before the write would not give that: a slow
writer's smaller number could land after a reader had moved past it. Here the insert itself takes
the number: an entry gets `_id` = newest + 1, a concurrent writer that took the same number gets a
duplicate key and tries the next. So entry n is only written once entry n-1 is, and `_id` (always
indexed) is the sequence.

Entries are dropped once their token has expired, except the newest: numbers are never reused.
"""
from __future__ import annotations

from typing import Any

from pymongo import DESCENDING
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from shared.tokens import LEEWAY_SECONDS

PAGE_SIZE = 1000
# Writers racing for a number; each lost race means another revocation got written, so this is
# only reached under an implausible burst of logouts.
MAX_APPEND_ROUNDS = 1000
# The gateway accepts a token up to LEEWAY_SECONDS after its expiry: its revocation must outlive that.
KEEP_AFTER_EXPIRY_SECONDS = LEEWAY_SECONDS + 5


class RevocationLogBusy(RuntimeError):
    pass


def newest_seq(log: Collection) -> int:
    newest = log.find_one({}, {"_id": 1}, sort=[("_id", DESCENDING)])
    return int(newest["_id"]) if newest else 0


def append(log: Collection, *, session_id: str, expires_epoch: int, revoked_epoch: float) -> int:
    """Write one revocation; returns its number."""
    for _ in range(MAX_APPEND_ROUNDS):
        seq = newest_seq(log) + 1
        try:
            log.insert_one({"_id": seq, "jti": session_id, "exp": expires_epoch, "revoked_at": revoked_epoch})
            return seq
        except DuplicateKeyError:
            continue
    raise RevocationLogBusy("could not number a revocation: too many at once")


def entries_after(log: Collection, *, after: int, limit: int = PAGE_SIZE) -> dict[str, Any]:
    """The entries numbered above `after`, oldest first, at most `limit`.

    `last` is where the caller continues from. If the caller is ahead of the log (the database was
    restored from an older backup), `last` moves it back to the newest entry, so that it does not
    wait for numbers that were already given out before."""
    cursor = log.find({"_id": {"$gt": after}}, sort=[("_id", 1)], limit=limit)
    revoked = [{"seq": e["_id"], "jti": e["jti"], "exp": e["exp"]} for e in cursor]
    last = revoked[-1]["seq"] if revoked else min(after, newest_seq(log))
    return {"revoked": revoked, "last": last, "more": len(revoked) == limit}


def purge_expired(log: Collection, *, now_epoch: float) -> int:
    keep = newest_seq(log)
    cutoff = now_epoch - KEEP_AFTER_EXPIRY_SECONDS
    return log.delete_many({"exp": {"$lt": cutoff}, "_id": {"$lt": keep}}).deleted_count


def record_earlier_revocations(sessions: Collection, log: Collection, *, now_epoch: float) -> int:
    """Give a log entry to each session revoked before the log existed (it has `revoked_at` but no
    `revocation_seq`) whose token is still accepted, so that an upgrade brings no logged-out session
    back. Repeating it (another process starting) writes at most a duplicate entry, which is harmless."""
    written = 0
    earlier = sessions.find({"revoked_at": {"$ne": None}, "revocation_seq": {"$exists": False},
                             "expires_epoch": {"$gt": now_epoch - KEEP_AFTER_EXPIRY_SECONDS}},
                            {"expires_epoch": 1, "revoked_epoch": 1})
    for session in earlier:
        seq = append(log, session_id=session["_id"], expires_epoch=session["expires_epoch"],
                     revoked_epoch=session.get("revoked_epoch") or now_epoch)
        sessions.update_one({"_id": session["_id"], "revocation_seq": {"$exists": False}},
                            {"$set": {"revocation_seq": seq}})
        written += 1
    return written
