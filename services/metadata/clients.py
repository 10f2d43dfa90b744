"""What the metadata service asks the files service, as the caller (identity header signed like the gateway's).

The files service owns datafiles and their permissions; a section only keeps links to the files
shown in it (links.py). Which of them the caller may read is asked of the files service, in one
call per request, so that a section never shows a file its reader could not open, and sees a
change of a file's ACL exactly when the file itself does (DESIGN.md section 4, read your writes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import requests

from shared.http import ThreadSessions
from shared.identity import IDENTITY_HEADER, Identity, encode_identity

READABLE_PATH = "/internal/datafiles/readable/"
MAX_IDS_PER_CALL = 10_000  # what the files service takes in one call


class FilesUnavailable(Exception):
    """The files service is not configured, does not answer, or answered something unexpected."""


@dataclass
class FilesClient:
    base_url: str
    secret: str
    timeout: float = 10.0
    _sessions: ThreadSessions = field(default_factory=ThreadSessions, repr=False)

    def readable_datafiles(self, identity: Identity, datafile_ids: Iterable[int]) -> set[int]:
        """Those of `datafile_ids` that `identity` may read (live ones only)."""
        wanted = sorted(set(datafile_ids))
        readable: set[int] = set()
        for start in range(0, len(wanted), MAX_IDS_PER_CALL):
            readable |= self._readable(identity, wanted[start:start + MAX_IDS_PER_CALL])
        return readable

    def _readable(self, identity: Identity, datafile_ids: list[int]) -> set[int]:
        if not self.base_url:
            raise FilesUnavailable("the files service is not configured (FILES_URL)")
        headers = {}
        if identity.is_authenticated:  # anonymous callers ask without an identity: public files only
            caller = Identity(user_id=identity.user_id, username=identity.username)
            headers[IDENTITY_HEADER] = encode_identity(caller, self.secret)
        try:
            response = self._sessions.get().post(self.base_url.rstrip("/") + READABLE_PATH, headers=headers,
                                                 json={"datafile_ids": datafile_ids}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise FilesUnavailable(f"the files service does not answer: {exc}") from None
        if response.status_code != 200:
            raise FilesUnavailable(f"the files service answered {response.status_code}: {response.text[:300]}")
        try:
            return {int(i) for i in response.json()["readable"]} & set(datafile_ids)
        except (ValueError, KeyError, TypeError) as exc:
            raise FilesUnavailable(f"the files service answered an unexpected body: {exc}") from None
