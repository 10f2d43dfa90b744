"""Calls from the neo service to the metadata service's internal API (labels, docs/neo.md *Labels*).

`GET /internal/values/?id=...` answers each value with its property name and the property's read
model (`owner`, `safety_level`, `readers`, `writers`), so the neo service decides read access with
`shared.access.can_read` and the caller's identity (which carries `befriended_by`). Tests replace
`app.extensions["neo_metadata"]` with a fake that has the same `values` method.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import requests

from shared.errors import ApiError, ServiceUnavailable
from shared.http import ThreadSessions
from shared.identity import IDENTITY_HEADER, Identity, encode_identity

# Value ids per request (the metadata service accepts at most 10000).
VALUES_PER_REQUEST = 500


@dataclass
class MetadataClient:
    base_url: str
    secret: str
    timeout: float = 30.0
    _sessions: ThreadSessions = field(default_factory=ThreadSessions, repr=False)

    def _headers(self, identity: Identity) -> dict[str, str]:
        if not identity.is_authenticated:
            return {}
        return {IDENTITY_HEADER: encode_identity(Identity(user_id=identity.user_id, username=identity.username), self.secret)}

    def values(self, identity: Identity, value_ids: Iterable[int]) -> tuple[list[dict[str, Any]], list[int]]:
        """(found values with `property_name`, `value` and the read model; missing ids)."""
        wanted = list(dict.fromkeys(int(v) for v in value_ids))
        if not wanted:
            return [], []
        if not self.base_url:
            raise ServiceUnavailable("The metadata service is not configured (METADATA_URL).")
        found: list[dict[str, Any]] = []
        missing: list[int] = []
        for start in range(0, len(wanted), VALUES_PER_REQUEST):
            piece = wanted[start:start + VALUES_PER_REQUEST]
            url = self.base_url.rstrip("/") + "/internal/values/"
            try:
                response = self._sessions.get().get(url, params={"id": ",".join(str(v) for v in piece)},
                                                    headers=self._headers(identity), timeout=self.timeout)
            except requests.RequestException as exc:
                raise ServiceUnavailable(f"The metadata service does not answer: {exc}") from None
            if response.status_code != 200:
                if response.status_code >= 500:
                    raise ServiceUnavailable(f"The metadata service answered {response.status_code}.")
                raise ApiError(f"The metadata service refused the request ({response.status_code}).",
                               http_status=502, message_type="upstream_error")
            body = response.json()
            found.extend(body.get("values") or [])
            missing.extend(int(v) for v in body.get("missing") or [])
        return found, missing
