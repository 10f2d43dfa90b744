"""The transactional outbox, without transactions.

MongoDB (and its test stand-in) gives us atomic writes to ONE document only, so an event is
stored inside the very document whose change it announces, in the same write:

- `_outbox`: the list of envelopes not yet published;
- `_outbox_pending: True` while that list may be non-empty (indexed; the relay looks for it);
- `_outbox_lease`: set by a relay while it publishes the document's events (see relay.py).

How a service writes:

    users.insert_one({**user, **outbox_fields(envelope)})
    users.update_one({"_id": uid}, with_outbox({"$set": {"is_active": False}}, envelope))
    record_event(db, envelope)                       # an event tied to no document's state
    links.update_one({"_id": lid, "_tombstone": {"$ne": True}}, tombstone_update(envelope))  # a delete

Deletes are soft until the event is out: `tombstone_update` marks the document `_tombstone: True`
and queues the event in one update; the relay deletes the document once its outbox is empty.
**Every read of a collection that uses tombstones must filter them out**
(`{"_tombstone": {"$ne": True}}`), and a write that revives the document (an upsert of the same
`_id`) must `$set` `_tombstone: False`, or the relay will delete it after publishing.

Services never touch the `_outbox*` fields otherwise and never project them out to clients.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from pymongo import ASCENDING

OUTBOX_FIELD = "_outbox"
PENDING_FIELD = "_outbox_pending"
LEASE_FIELD = "_outbox_lease"
TOMBSTONE_FIELD = "_tombstone"
OUTBOX_COLLECTION = "outbox"  # standalone events of record_event
_RESERVED = (OUTBOX_FIELD, PENDING_FIELD, LEASE_FIELD)


def _checked(envelopes: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    checked = []
    for envelope in envelopes:
        if not isinstance(envelope, Mapping) or not isinstance(envelope.get("event_id"), str):
            raise TypeError("outbox entries must be envelopes (see make_envelope / envelope_for)")
        if not isinstance(envelope.get("type"), str):
            raise TypeError(f"envelope {envelope['event_id']} has no type")
        checked.append(dict(envelope))
    return checked


def outbox_fields(*envelopes: Mapping[str, Any]) -> dict[str, Any]:
    """Fields to merge into a document being inserted: `{**doc, **outbox_fields(env)}`."""
    entries = _checked(envelopes)
    return {OUTBOX_FIELD: entries, PENDING_FIELD: bool(entries)}


def with_outbox(update: Mapping[str, Any], *envelopes: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a pymongo update document that also queues `envelopes` in the same write.

    Adds `$push: {_outbox: {$each: [...]}}` and `$set: {_outbox_pending: True}`, merged with the
    update's own `$set`/`$push`. The input is not modified.
    """
    if isinstance(update, (list, tuple)):
        raise TypeError("with_outbox does not support aggregation-pipeline updates")
    if not isinstance(update, Mapping):
        raise TypeError(f"an update document must be a mapping, got {type(update).__name__}")
    if any(not key.startswith("$") for key in update):
        raise ValueError("with_outbox wants an update with $-operators; for inserts use outbox_fields")
    for operator, fields in update.items():
        if not isinstance(fields, Mapping):
            continue
        touched = [f for f in fields if f.split(".", 1)[0] in _RESERVED]
        ours = (operator == "$push" and touched == [OUTBOX_FIELD]) or (
            operator == "$set" and touched == [PENDING_FIELD] and fields[PENDING_FIELD] is True
        )  # what an earlier with_outbox added: merging again is fine
        if touched and not ours:
            raise ValueError(f"the update already touches {touched} with {operator}; leave the outbox fields to with_outbox")
    entries = _checked(envelopes)
    merged: dict[str, Any] = {op: (dict(fields) if isinstance(fields, Mapping) else fields) for op, fields in update.items()}
    if not entries:
        return merged
    push = merged.setdefault("$push", {})
    existing = push.get(OUTBOX_FIELD)
    if existing is not None:
        if isinstance(existing, Mapping) and set(existing) == {"$each"}:
            entries = _checked(existing["$each"]) + entries
        elif isinstance(existing, Mapping) and any(k.startswith("$") for k in existing):
            raise ValueError("with_outbox cannot merge a $push to _outbox that uses $position/$slice/$sort")
        else:
            entries = _checked([existing]) + entries
    push[OUTBOX_FIELD] = {"$each": entries}
    merged.setdefault("$set", {})[PENDING_FIELD] = True
    return merged


def tombstone_update(*envelopes: Mapping[str, Any]) -> dict[str, Any]:
    """An update that soft-deletes a document and queues `envelopes`; the relay deletes it after publishing.

    Use it in place of `delete_one`, with `{"_tombstone": {"$ne": True}}` in the filter.
    """
    entries = _checked(envelopes)
    update: dict[str, Any] = {"$set": {TOMBSTONE_FIELD: True, PENDING_FIELD: True}}
    if entries:
        update["$push"] = {OUTBOX_FIELD: {"$each": entries}}
    return update


def record_event(db, envelope: Mapping[str, Any]) -> str:
    """Queue an event tied to no document's state, in the `outbox` collection; returns its event_id."""
    (entry,) = _checked([envelope])
    db[OUTBOX_COLLECTION].insert_one(
        {"_id": entry["event_id"], OUTBOX_FIELD: [entry], PENDING_FIELD: True, TOMBSTONE_FIELD: True}
    )
    return entry["event_id"]


def outbox_collections(collections: Iterable[str]) -> list[str]:
    """The collections a relay scans: the given ones plus the standalone `outbox`, without repeats."""
    names: list[str] = []
    for name in [*collections, OUTBOX_COLLECTION]:
        if name not in names:
            names.append(name)
    return names


def ensure_outbox_indexes(db, collections: Iterable[str]) -> None:
    """Index `_outbox_pending` on every collection with an outbox (and on `outbox`)."""
    for name in outbox_collections(collections):
        db[name].create_index([(PENDING_FIELD, ASCENDING)])
