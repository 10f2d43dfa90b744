"""The neo service's action history (seed 001 "RESOURCE ACTION HISTORY"; shared/history.py).

One entry per action, naming every object it touched, in the `history` collection: created,
updated (one object or a bulk update), deleted (with the cascade), labelled, unlabelled,
permissions_changed (the acl service's `acl.permissions.changed`, applied in services/neo/acl.py),
and saved selections (selection_saved, selection_deleted). Writes that publish an event use that
event's id as the entry id, so a retried write or a redelivered event keeps one entry.

docs/neo.md, *History*, is the contract of `GET /electrophysiology/<type>/<id>/history/`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pymongo.collection import Collection

from services.neo.context import NeoContext
from shared.history import RESOURCES_SHOWN, describe_source, permission_entries, record_action, resource_history
from shared.identity import Identity

SERVICE = "neo"


def _shown(neo_ids: Sequence[str]) -> list[str]:
    # `resources` holds them all; results only name the first ones (a conversion makes thousands).
    return list(neo_ids[:RESOURCES_SHOWN])


def _by(identity: Identity) -> str:
    return identity.username or f"user {identity.user_id}"


def _value_name(value_id: int) -> str:
    return f"value_{value_id}"


# --- object writes (services/neo/service.py) -----------------------------------------------------

def record_created(
    history: Collection,
    *,
    identity: Identity,
    type_name: str,
    neo_ids: Sequence[str],
    source: Mapping[str, Any] | None,
    value_ids: Iterable[int] = (),
    entry_id: str | None,
) -> None:
    """One entry for a create request, however many objects it made."""
    origin = describe_source(source or {})
    description = f"created by {origin}" if origin else f"created by {_by(identity)}"
    if len(neo_ids) > 1:
        description += f" ({len(neo_ids)} {type_name} objects)"
    result: dict[str, Any] = {"created": _shown(neo_ids), "created_total": len(neo_ids)}
    labels = [_value_name(v) for v in value_ids]
    if labels:
        result["labels"] = labels
    record_action(history, actor=identity.username, action="created", resources=neo_ids, description=description,
                  source=source, result=result, entry_id=entry_id)


def record_updated(
    history: Collection,
    *,
    identity: Identity,
    neo_ids: Sequence[str],
    fields: Sequence[str],
    value_ids: Sequence[int] | None = None,
    entry_id: str | None,
) -> None:
    """One entry for an update of one object or a bulk update of many."""
    changed = list(fields) + (["metadata"] if value_ids is not None else [])
    description = f"updated by {_by(identity)}: {', '.join(changed) or 'no fields'}"
    if len(neo_ids) > 1:
        description += f" ({len(neo_ids)} objects at once)"
    result: dict[str, Any] = {"fields": changed}
    if value_ids is not None:  # the objects' labels are now exactly these values
        result["labels"] = [_value_name(v) for v in value_ids]
    record_action(history, actor=identity.username, action="updated", resources=neo_ids, description=description,
                  result=result, entry_id=entry_id)


def record_deleted(
    history: Collection, *, identity: Identity, neo_ids: Sequence[str], entry_id: str | None
) -> None:
    """One entry for a delete; a cascade lists the object first, then its descendants."""
    description = f"deleted by {_by(identity)}"
    if len(neo_ids) > 1:
        description += f" with its {len(neo_ids) - 1} descendant(s)"
    record_action(history, actor=identity.username, action="deleted", resources=neo_ids, description=description,
                  result={"deleted": _shown(neo_ids), "deleted_total": len(neo_ids)}, entry_id=entry_id)


# --- labels (services/neo/labels.py) -------------------------------------------------------------

def record_labelled(
    history: Collection, *, identity: Identity, neo_ids: Sequence[str], value_id: int, label_id: str
) -> None:
    record_action(history, actor=identity.username, action="labelled", resources=neo_ids,
                  description=f"labelled with value {value_id} by {_by(identity)}",
                  result={"value": _value_name(value_id), "label": label_id, "object_total": len(neo_ids)})


def record_unlabelled(
    history: Collection, *, identity: Identity, neo_ids: Sequence[str], value_id: int, label_id: str,
    label_deleted: bool,
) -> None:
    how = " (label deleted)" if label_deleted else ""
    record_action(history, actor=identity.username, action="unlabelled", resources=neo_ids,
                  description=f"unlabelled from value {value_id} by {_by(identity)}{how}",
                  result={"value": _value_name(value_id), "label": label_id, "label_deleted": label_deleted,
                          "object_total": len(neo_ids)})


# --- saved selections (services/neo/selections.py) -----------------------------------------------

def record_selection(history: Collection, *, identity: Identity, selection_id: str, name: str, saved: bool) -> None:
    verb = "saved" if saved else "deleted"
    record_action(history, actor=identity.username, action=f"selection_{verb}", resources=[selection_id],
                  description=f"selection {name!r} {verb} by {_by(identity)}", result={"name": name})


# --- permissions (services/neo/acl.py) -----------------------------------------------------------

def record_permission_changes(
    history: Collection,
    *,
    event_id: str,
    payload: Mapping[str, Any],
    owned: Iterable[Mapping[str, Any]],
    applied: set[str],
) -> None:
    """One entry per group of `owned` changes (shared/history.py `permission_entries`: ids
    `{event_id}:{n}`, numbered over all owned changes so a redelivery numbers them alike), naming the
    resources of `applied` (the changes that took effect) only."""
    for entry in permission_entries(owned, event_id=event_id, by_username=payload.get("by_username"),
                                    reason=payload.get("reason")):
        entry["resources"] = [r for r in entry["resources"] if r in applied]
        if entry["resources"]:
            record_action(history, **entry)


# --- reading -------------------------------------------------------------------------------------

def object_history(*, ctx: NeoContext, identity: Identity, type_name: str, raw_id: str,
                   args: Mapping[str, str]) -> dict[str, Any]:
    """`GET /electrophysiology/<type>/<id>/history/`: after the same read check as a GET of the
    object (404 unknown or deleted, 401 anonymous on a non-public one, 403 no access)."""
    from services.neo.service import load_readable, parse_object_id, require_type  # service imports this module

    neo_type = require_type(type_name)
    doc = load_readable(ctx, identity, neo_type, parse_object_id(neo_type, raw_id))
    return resource_history(ctx.store.history, resource=doc["neo_id"], args=args, service=SERVICE,
                            logged_in_as=identity.username)


def selection_history(*, ctx: NeoContext, identity: Identity, raw_id: str, args: Mapping[str, str]) -> dict[str, Any]:
    """`GET /selections/<id>/history/`: for the selection's owner only, like the selection itself."""
    from services.neo.selections import load_own

    doc = load_own(ctx, identity, raw_id)
    return resource_history(ctx.store.history, resource=f"selection_{doc['_id']}", args=args, service=SERVICE,
                            logged_in_as=identity.username)
