"""Permissions in the files service: the acl service's changes, friendships and the internal ACL view.

docs/permissions.md is the contract. The acl service sends `acl.permissions.changed`
(services/acl/events.py); the files worker consumes it on the queue `files.acl` and applies the
changes of the datafiles (`datafile_<id>`) to their documents, guarded by `acl_version`
(shared/access.py `apply_acl_changes`), so a repeated or late event changes nothing. Ids of other
services' resources (`section_5`, `segment_3`, ...) are ignored. Who counts whom as a friend is
kept from `auth.friendship.added|removed` on the queue `files.friendships` (shared/friends.py).

`acl_handlers(db)` and `friendship_handlers(db)` take an event envelope, so tests can call them
without a broker.
"""
from __future__ import annotations

from typing import Any, Mapping

from services.files import history
from services.files.ids import datafile_number  # also imported from here (routes, tests)
from shared.access import acl_of, apply_acl_changes
from shared.events import ConsumerSpec
from shared.friends import friendship_handlers
from shared.history import HISTORY_COLLECTION

ACL_QUEUE = "files.acl"
FRIENDSHIPS_QUEUE = "files.friendships"
QUEUES = (ACL_QUEUE, FRIENDSHIPS_QUEUE)
PERMISSIONS_CHANGED = "acl.permissions.changed"  # services/acl/events.py PermissionsChanged.routing_key
DATAFILES = "datafiles"


def locator(db):
    """`locate(resource)` for apply_acl_changes: the datafile's document, or nothing if not ours."""
    collection = db[DATAFILES]

    def locate(resource: str) -> list[tuple[Any, dict[str, Any]]]:
        number = datafile_number(resource)
        return [] if number is None else [(collection, {"_id": number})]

    return locate


def apply_permissions_changed(db, envelope: Mapping[str, Any]) -> int:
    """Apply one `acl.permissions.changed` envelope; returns how many datafiles changed."""
    payload = envelope.get("payload") or {}
    applied = apply_acl_changes(payload.get("changes") or [], locator(db))
    # Recorded even when nothing was applied: a late change (an older version arriving after a
    # newer one) still happened; a redelivery finds its entries already there (ids `<event_id>:<n>`).
    history.record_permissions_changed(db[HISTORY_COLLECTION], datafiles=db[DATAFILES], envelope=envelope)
    return applied


def acl_handlers(db) -> dict[str, Any]:
    """The consumer handler table of the queue `files.acl`."""
    def handle(envelope: dict) -> None:
        apply_permissions_changed(db, envelope)

    return {PERMISSIONS_CHANGED: handle}


def consumers(db, **options: Any) -> list[ConsumerSpec]:
    """The files worker's permission consumers (the conversion consumer runs beside them).

    `options` are more Consumer keyword arguments (say `poll_interval`)."""
    return [
        ConsumerSpec(queue=ACL_QUEUE, handlers=acl_handlers(db), options=dict(options)),
        ConsumerSpec(queue=FRIENDSHIPS_QUEUE, handlers=friendship_handlers(db), options=dict(options)),
    ]


def internal_acl(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What `GET /internal/acl/datafile_<id>/` answers: the ACL, its version and the tree parent."""
    section = doc.get("section")
    return {
        "resource": f"datafile_{doc['_id']}",
        **acl_of(doc),
        "acl_version": int(doc.get("acl_version", 0) or 0),
        "parents": [] if section is None else [f"section_{section}"],
    }
