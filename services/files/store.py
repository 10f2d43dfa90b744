"""The files service's collections and where the bytes live.

- `datafiles`: one document per datafile: its fields, the permission read model
  (shared/access.py), the conversion state and, while a conversion runs, `conversion`
  (task id, attempts, what the task created so far). Deleted ones are tombstones until their event
  is out, so every read filters `LIVE`.
- `members`: `{_id: "<archive id>:<member path>", datafile}`: the datafile an archive member became,
  so that a repeated extraction (a redelivered task) reuses it instead of making another.
- `archive_budgets`: `{_id: <uploaded datafile id>, bytes, members, archives}`: what the archives
  of one upload (nested ones included) extracted together (conversion/archive_members.py).
- `counters`: the datafile id sequence.
- `friendships`: who counts whom as a friend (shared/friends.py), for friendly reads.
- `history`: the action history of the datafiles (services/files/history.py, shared/history.py).

Bytes: `FILES_DIR/objects/<id % 1000>/<id>` (named by id only: no client-given name ever becomes a
path); exports are written to `FILES_DIR/tmp/` and removed once sent.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.database import Database

from shared.access import ensure_acl_indexes
from shared.events import ensure_outbox_indexes
from shared.friends import ensure_friendship_indexes
from shared.history import HISTORY_COLLECTION, ensure_history_indexes
from shared.mongo import next_sequence

LIVE = {"_tombstone": {"$ne": True}}
OUTBOX_COLLECTIONS = ("datafiles",)
HIDDEN = {"_outbox": 0, "_outbox_pending": 0, "_outbox_lease": 0}


@dataclass(frozen=True)
class FilesStore:
    db: Database
    files_dir: Path

    @property
    def datafiles(self) -> Collection:
        return self.db["datafiles"]

    @property
    def members(self) -> Collection:
        return self.db["members"]

    @property
    def archive_budgets(self) -> Collection:
        return self.db["archive_budgets"]

    @property
    def history(self) -> Collection:
        return self.db[HISTORY_COLLECTION]

    def next_id(self) -> int:
        return next_sequence(self.db, "datafile")

    def path_of(self, datafile_id: int) -> Path:
        return self.files_dir / "objects" / f"{datafile_id % 1000:03d}" / str(datafile_id)

    def tmp_dir(self) -> Path:
        path = self.files_dir / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def ensure_indexes(self) -> None:
        ensure_acl_indexes(self.datafiles)  # owner, readers, writers, safety_level
        for key in ("section", "date_created", "author", "parent_datafile", "archive_root"):
            self.datafiles.create_index([(key, ASCENDING)])
        ensure_friendship_indexes(self.db)
        ensure_history_indexes(self.history)  # by resource and by actor, newest first
        ensure_outbox_indexes(self.db, OUTBOX_COLLECTIONS)
