"""What the acl service asks other services over their internal APIs.

- the auth service: users by username or id (`/internal/users/`), to turn `shared_with` usernames
  into user ids and to find the e-mail address of a user to notify;
- the owning service of a resource (`/internal/acl/<resource>/`), when a resource's `created`
  event has not reached this service yet.

A service that is not configured or does not answer is a 503 for the caller (nothing changed).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import requests

from shared.errors import ServiceUnavailable
from shared.http import ThreadSessions


@dataclass
class InternalClient:
    base_urls: Mapping[str, str]  # service name -> base URL
    timeout: float = 10.0
    _sessions: ThreadSessions = field(default_factory=ThreadSessions, repr=False)

    def _session(self) -> requests.Session:
        return self._sessions.get()

    def get(self, service: str, path: str, params: Any = None) -> requests.Response:
        base = self.base_urls.get(service) or ""
        if not base:
            raise ServiceUnavailable(f"The {service} service is not configured.", message_type="service_unavailable")
        try:
            response = self._session().get(base.rstrip("/") + path, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ServiceUnavailable(f"The {service} service does not answer: {exc}.",
                                     message_type="service_unavailable") from None
        if response.status_code >= 500:
            raise ServiceUnavailable(f"The {service} service failed ({response.status_code}).",
                                     message_type="service_unavailable")
        return response


@dataclass
class UserDirectory:
    client: InternalClient

    def _find(self, params: list[tuple[str, Any]]) -> list[dict[str, Any]]:
        if not params:
            return []
        response = self.client.get("auth", "/internal/users/", params=params)
        response.raise_for_status()
        return response.json()["users"]

    def by_username(self, usernames: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Active users keyed by lower-case username."""
        found = self._find([("username", name) for name in usernames])
        return {user["username"].lower(): user for user in found}

    def by_id(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        found = self._find([("id", int(i)) for i in ids])
        return {int(user["id"]): user for user in found}


@dataclass
class ResourceDirectory:
    client: InternalClient

    def fetch(self, service: str, resource: str) -> dict[str, Any] | None:
        """The resource's ACL and parents as its owning service has them, or None if it has none."""
        response = self.client.get(service, f"/internal/acl/{resource}/")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()
