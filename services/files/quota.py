"""Datafile storage quotas per user (`DATAFILE_QUOTA_BYTES`, 0 = unlimited), on shared/quota.py.

A user's counter (collection `datafile_quota`) is the bytes of the datafiles they own. Every way a
datafile comes to be stored counts it against its owner before the bytes are kept:

- an upload (`POST /datafiles/`) reserves as its bytes arrive (`UploadReservation`) and is stopped
  with 507 `quota_exceeded` at the first chunk that does not fit, its partial file removed;
- an archive member is reserved before it is extracted (`reserve_datafile_bytes`; given back with
  `release_datafile_bytes` if it is not stored after all);
- a deleted datafile gives back what it counted (`quota_bytes` on its document, set by
  service.py `new_document` to its size), so files stored before counting began give back nothing.

Counters are kept with or without a limit, so that setting one later starts from the bytes stored
since this counting began.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from shared.quota import Quota, QuotaExceeded

if TYPE_CHECKING:  # annotations only: whatever context.py imports may import this module
    from services.files.context import FilesContext

COUNTERS = "datafile_quota"
# An upload reserves its bytes in steps this large (one counter write per step), and exactly
# what it needs when a whole step no longer fits.
RESERVATION_STEP = 8 * 1024 * 1024

__all__ = ["QuotaExceeded", "UploadReservation", "datafile_quota", "release_datafile_bytes", "reserve_datafile_bytes"]


def datafile_quota(ctx: FilesContext) -> Quota:
    """The counters and the configured limit."""
    return Quota(ctx.store.db[COUNTERS], ctx.limits.datafile_quota_bytes, what="datafile storage")


def reserve_datafile_bytes(ctx: FilesContext, owner: int, nbytes: int) -> None:
    """Count `nbytes` more against the datafile quota of `owner` (the user id who will own the
    datafile), or raise `QuotaExceeded` (507) and count nothing."""
    datafile_quota(ctx).reserve(owner, nbytes)


def release_datafile_bytes(ctx: FilesContext, owner: int, nbytes: int) -> None:
    """Give back `nbytes` of `owner`'s datafile quota (a reservation not used, a deleted datafile)."""
    datafile_quota(ctx).release(owner, nbytes)


class UploadReservation:
    """The bytes reserved for one upload in progress, grown as its file arrives.

    Concurrent uploads of one user each reserve before they write, with one conditional counter
    update per step (shared/quota.py), so together they never pass the quota."""

    def __init__(self, ctx: FilesContext, owner: int, *, step: int = RESERVATION_STEP):
        self.quota = datafile_quota(ctx)
        self.owner = owner
        self.step = step
        self.reserved = 0

    def refuse_declared(self, nbytes: int) -> None:
        """507 before anything is read when a declared size cannot fit what the quota leaves."""
        self.quota.require_room(self.owner, nbytes)

    def cover(self, size: int) -> None:
        """Make sure `size` bytes of the file are reserved before they are written; QuotaExceeded if not."""
        needed = size - self.reserved
        if needed <= 0:
            return
        try:
            self.quota.reserve(self.owner, max(needed, self.step))
            self.reserved += max(needed, self.step)
        except QuotaExceeded:
            if needed >= self.step:
                raise
            self.quota.reserve(self.owner, needed)  # the last bytes that fit
            self.reserved += needed

    def settle(self, size: int) -> None:
        """The file is complete at `size` bytes: give back the rest of the last step."""
        if self.reserved > size:
            self.quota.release(self.owner, self.reserved - size)
            self.reserved = size

    def cancel(self) -> None:
        """Nothing is stored: give back everything reserved."""
        self.quota.release(self.owner, self.reserved)
        self.reserved = 0
