"""Calls to the other services' APIs as the acting user (the identity header, signed like the gateway's).

The neo service's public API creates, reads and deletes NEO objects; the metadata service's
internal API gives a section's permissions, creates section paths and imports odML documents.
A service that is not configured or does not answer is `ServiceDown` (a transient failure: the
conversion task is retried); a 4xx answer is `ServiceRefused` with the service's message.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

import numpy as np
import orjson
import requests

from shared.history import source_header
from shared.http import ThreadSessions
from shared.identity import IDENTITY_HEADER, Identity, encode_identity


class ServiceDown(Exception):
    """The other service is not configured, unreachable or answered 5xx."""


class ServiceRefused(Exception):
    """The other service answered 4xx or 507 (a quota): the request itself is refused (not retried)."""

    def __init__(self, status: int, body: Any, text: str):
        self.status, self.body = status, body
        super().__init__(text)


@dataclass
class _Client:
    base_url: str
    secret: str
    name: str
    timeout: float = 300.0
    # Sent with every call of this client: a client bound to a job (`for_source`) tells the other
    # service why it is called, so that service's history says "created by the conversion of datafile 9".
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    _sessions: ThreadSessions = field(default_factory=ThreadSessions, repr=False)

    def _session(self) -> requests.Session:
        return self._sessions.get()

    def for_source(self, kind: str, resource: str):
        """This client, its calls carrying `X-Gnode-Source: <kind>:<resource>` (shared/history.py);
        it shares the HTTP sessions of the original."""
        return replace(self, extra_headers={**self.extra_headers, **source_header(kind, resource)})

    def headers(self, identity: Identity) -> dict[str, str]:
        if not identity.is_authenticated:
            return {}  # an anonymous caller (say, exporting a public datafile): no identity header
        return {IDENTITY_HEADER: encode_identity(Identity(user_id=identity.user_id, username=identity.username), self.secret)}

    def request(self, method: str, path: str, identity: Identity, *, ok=(200, 201), stream=False,
                headers: Mapping[str, str] | None = None, **kwargs) -> requests.Response:
        if not self.base_url:
            raise ServiceDown(f"the {self.name} service is not configured ({self.name.upper()}_URL)")
        url = self.base_url.rstrip("/") + path
        sent = {**self.headers(identity), **self.extra_headers, **(headers or {})}
        try:
            response = self._session().request(method, url, headers=sent, timeout=self.timeout, stream=stream, **kwargs)
        except requests.RequestException as exc:
            raise ServiceDown(f"the {self.name} service does not answer: {exc}") from None
        if response.status_code in ok:
            return response
        # 507 is a quota refusal (shared/quota.py), not an outage: retrying would not help.
        if (response.status_code >= 500 and response.status_code != 507) or response.status_code in (408, 429):
            raise ServiceDown(f"the {self.name} service answered {response.status_code}: {response.text[:300]}")
        try:
            body = response.json()
        except ValueError:
            body = None
        text = body.get("message") if isinstance(body, dict) else response.text[:300]
        details = body.get("details") if isinstance(body, dict) else None
        raise ServiceRefused(response.status_code, body,
                             f"{self.name} service: {response.status_code} {text}" + (f" {details}" if details else ""))


def _json(body: Any) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


class NeoClient(_Client):
    def create(self, identity: Identity, type_name: str, body: Mapping[str, Any],
               arrays: Mapping[str, np.ndarray] | None = None) -> str:
        """Create one object (arrays as .npy parts); returns its neo_id."""
        path = f"/electrophysiology/{type_name}/"
        if arrays:
            files = {"json": (None, _json(body), "application/json")}
            for name, array in arrays.items():
                files[name] = (f"{name}.npy", npy_bytes(array), "application/x-npy")
            response = self.request("POST", path, identity, files=files)
        else:
            response = self._post_json(path, identity, body)
        return response.json()["neo_id"]

    def _post_json(self, path: str, identity: Identity, body: Any) -> requests.Response:
        return self.request("POST", path, identity, data=_json(body), headers={"Content-Type": "application/json"})

    def create_many(self, identity: Identity, type_name: str, bodies: list[Mapping[str, Any]]) -> list[str]:
        """Create many objects of one type (no arrays) in batches; returns their neo_ids in order."""
        ids: list[str] = []
        for start in range(0, len(bodies), 5000):
            response = self._post_json(f"/electrophysiology/{type_name}/", identity, bodies[start:start + 5000])
            ids += response.json()["selected"]
        return ids

    def get(self, identity: Identity, neo_id: str, **params: Any) -> dict[str, Any]:
        type_name = neo_id.rsplit("_", 1)[0]
        return self.request("GET", f"/electrophysiology/{type_name}/{neo_id}/", identity, params=params).json()

    def array(self, identity: Identity, neo_id: str, field_name: str) -> np.ndarray:
        type_name = neo_id.rsplit("_", 1)[0]
        response = self.request("GET", f"/electrophysiology/{type_name}/{neo_id}/", identity,
                                params={"format": "npy", "field": field_name})
        return np.load(io.BytesIO(response.content), allow_pickle=False)

    def list_ids(self, identity: Identity, type_name: str, **filters: Any) -> list[str]:
        ids: list[str] = []
        offset = 0
        while True:
            body = self.request("GET", f"/electrophysiology/{type_name}/", identity,
                                params={**filters, "max_results": 10000, "offset": offset}).json()
            ids += body["selected"]
            offset += len(body["selected"])
            if not body["selected"] or offset >= body["object_total"]:
                return ids

    def delete(self, identity: Identity, neo_id: str, *, cascade: bool = False) -> None:
        type_name = neo_id.rsplit("_", 1)[0]
        self.request("DELETE", f"/electrophysiology/{type_name}/{neo_id}/", identity, ok=(200, 404),
                     params={"cascade": "true" if cascade else "false"})


class MetadataClient(_Client):
    def section(self, identity: Identity, section_id: int) -> dict[str, Any] | None:
        """The section's internal record (owner, ACL read model), or None if there is no such section."""
        response = self.request("GET", f"/internal/sections/{section_id}/", identity, ok=(200, 404))
        if response.status_code == 404:
            return None
        return response.json()["section"]

    def make_path(self, identity: Identity, parent_section: int | None, path: Iterable[str], *,
                  acl: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """`mkdir -p` of `path` under `parent_section`: {"sections": [...], "leaf_section_id"}; the
        sections it creates start with `acl` (shared/access.py `acl_of`: a datafile's) when given."""
        body = {"parent_section": parent_section, "path": list(path), "source": "archive"}
        if acl is not None:
            body["acl"] = dict(acl)
        return self.request("POST", "/internal/sections/", identity, json=body).json()

    def import_odml(self, identity: Identity, data: bytes, *, filename: str, target_section: int | None,
                    acl: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Import an odML document; the sections it creates start with `acl` when given."""
        params = {"source": "import"}
        if target_section is not None:
            params["target_section_id"] = str(target_section)
        files = {"file": (filename, data, "application/octet-stream")}
        if acl is not None:
            files["acl"] = (None, _json(dict(acl)), "application/json")
        return self.request("POST", "/internal/import/", identity, params=params, files=files).json()

    def delete_section(self, identity: Identity, section_id: int) -> None:
        self.request("DELETE", f"/metadata/sections/{section_id}/", identity, ok=(200, 404), params={"force": "true"})
