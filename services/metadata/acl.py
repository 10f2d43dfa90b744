"""Permissions in the metadata service: the acl service's changes applied here, and what it asks.

The acl service (services/acl/) owns every ACL (docs/permissions.md). This service keeps the read
model on its documents (shared/access.py) and:

- consumes `acl.permissions.changed` (queue `metadata.acl`, `acl_handlers`): a change of
  `section_<id>` goes to the section and to its properties (which carry a copy of their section's
  ACL; values live inside the property documents), each write guarded by `acl_version`, so a
  repeated or late event changes nothing. Other services' resources (`datafile_*`, NEO ids) and
  anything that is not a section id are ignored; the changes in force are recorded in the action
  history (history.py `permissions_changed`: one entry per group of identical permissions, with
  ids derived from the event's, so a redelivered event adds nothing);
- consumes `auth.friendship.added|removed` (queue `metadata.friendships`, shared/friends.py) for
  friendly (safety level 2) reads;
- answers `GET /internal/acl/section_<id>/` (`internal_acl`) for a section the acl service has not
  heard of yet.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Iterable, Mapping

from services.metadata import history
from services.metadata.store import LIVE, MetadataStore
from shared.access import SAFETY_LEVELS, acl_of, apply_acl_changes
from shared.errors import NotFound
from shared.events import ConsumerSpec
from shared.friends import friendship_handlers

log = logging.getLogger(__name__)

ACL_QUEUE = "metadata.acl"
FRIENDSHIPS_QUEUE = "metadata.friendships"
PERMISSIONS_CHANGED = "acl.permissions.changed"
_SECTION = re.compile(r"^section_(\d{1,18})$")


def section_number(resource: Any) -> int | None:
    """The id of a typed section id (`section_5`); None for anything else (another service's id)."""
    match = _SECTION.match(str(resource)) if isinstance(resource, str) else None
    number = int(match.group(1)) if match else 0
    return number if number >= 1 else None


def locator(store: MetadataStore):
    """`locate` for shared/access.py `apply_acl_changes`: where a resource's ACL lives here."""
    def locate(resource: str) -> list[tuple[Any, dict[str, Any]]]:
        section_id = section_number(resource)
        if section_id is None:
            return []
        return [(store.sections, {"_id": section_id}), (store.properties, {"section": section_id})]

    return locate


def _valid(change: Any) -> bool:
    """A change of one of our sections that can be applied (the acl service sends nothing else)."""
    try:
        users = [change.get("readers") or [], change.get("writers") or []]
        if not all(isinstance(ids, list) for ids in users) or not isinstance(change.get("shared_with") or {}, Mapping):
            return False
        [int(u) for ids in users for u in ids]
        return int(change["version"]) >= 1 and int(change["safety_level"]) in SAFETY_LEVELS
    except (KeyError, TypeError, ValueError):
        return False


def ours(changes: Iterable[Any]) -> list[Mapping[str, Any]]:
    """The changes of sections; a malformed one is logged and skipped so that it cannot hold up the rest."""
    kept = []
    for change in changes:
        resource = change.get("resource") if isinstance(change, Mapping) else None
        if section_number(resource) is None:
            continue
        if not _valid(change):
            log.warning("ignoring a malformed ACL change of %s: %r", resource, change)
            continue
        kept.append(change)
    return kept


def apply_changes(store: MetadataStore, changes: Iterable[Any]) -> int:
    """Apply the changes of this service's sections (and their properties); the number of documents changed."""
    return apply_acl_changes(ours(changes), locator(store))


def _username(raw: Any) -> str | None:
    """`by_username` of the event (newer acl services only): None for the system or an older producer."""
    return raw if isinstance(raw, str) and raw else None


def acl_handlers(store: MetadataStore) -> dict[str, Any]:
    """The consumer handler table of queue `metadata.acl`."""
    def changed(envelope: dict) -> None:
        payload = envelope.get("payload") or {}
        changes = payload.get("changes") or []
        if not isinstance(changes, list):
            log.warning("ignoring %s %s: `changes` is not a list", PERMISSIONS_CHANGED, envelope.get("event_id"))
            return
        kept = ours(changes)
        apply_acl_changes(kept, locator(store))
        if kept:
            history.permissions_changed(store, event_id=str(envelope.get("event_id")), changes=kept,
                                        by_username=_username(payload.get("by_username")), reason=payload.get("reason"))

    return {PERMISSIONS_CHANGED: changed}


def consumer_specs(db) -> list[ConsumerSpec]:
    """The permission consumers of the metadata worker."""
    return [
        ConsumerSpec(queue=ACL_QUEUE, handlers=acl_handlers(MetadataStore(db))),
        ConsumerSpec(queue=FRIENDSHIPS_QUEUE, handlers=friendship_handlers(db)),
    ]


def internal_acl(store: MetadataStore, resource: str) -> dict[str, Any]:
    """A live section's ACL and parent, as the acl service asks for it; 404 for anything else."""
    section_id = section_number(resource)
    doc = store.sections.find_one({"_id": section_id, **LIVE}) if section_id is not None else None
    if doc is None:
        raise NotFound(f"There is no {resource} here (the metadata service owns sections: section_<id>).")
    parent = doc.get("parent_section")
    return {
        "resource": f"section_{section_id}",
        **acl_of(doc),
        "acl_version": int(doc.get("acl_version") or 0),
        "parents": [f"section_{parent}"] if parent is not None else [],
    }
