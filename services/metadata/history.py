"""The action history of sections, properties and values (seed 001 "RESOURCE ACTION HISTORY").

Every write of the service records ONE entry in the `history` collection (shared/history.py) right
after its state change: a section create, update, move or delete (the whole subtree in one entry),
a copy, an odML import (all its sections in one entry), a property's or value's create, update,
move or delete, and the acl service's permission changes (acl.py). An entry lists every resource
it touched as typed ids, so `GET /metadata/<type>/<id>/history/` is one indexed query:

- a new or deleted section also names its parent (whose children changed), a move both parents;
- a property names its section and the values it created or removed; a value names its property.

The entry's `_id` is the `event_id` of the event the write publishes (the top section's for a
subtree, a copy or an import), so recording the same action twice keeps one entry.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from services.metadata.ids import parse_id, typed
from services.metadata.store import LIVE, MetadataStore
from shared.history import describe_source, permission_entries, record_action, resource_history

SERVICE = "metadata"

Source = Mapping[str, Any] | None


# --- wording --------------------------------------------------------------------------------------

def _by(actor: str | None) -> str:
    return f"by {actor}" if actor else "by the system"


def _place(section_id: int | None) -> str:
    return f"section {section_id}" if section_id is not None else "the root"


def _for(source: Source) -> str:
    """" for the odML import of datafile 9" when another service's job caused the action."""
    why = describe_source(source or {})
    return f" for {why}" if why else ""


def _ids(kind: str, numbers: Iterable[int | None]) -> list[str]:
    return [typed(kind, n) for n in numbers if n is not None]


def _values_of(props: Iterable[Mapping[str, Any]]) -> list[int]:
    return [v["id"] for p in props for v in p.get("values") or ()]


def _record(store: MetadataStore, *, actor: str | None, action: str, resources: Iterable[str], description: str,
            source: Source = None, result: Mapping[str, Any] | None = None, entry_id: str | None = None) -> None:
    record_action(store.history, actor=actor, action=action, resources=resources, description=description,
                  source=source, result=result, entry_id=entry_id)


# --- sections -------------------------------------------------------------------------------------

def sections_created(store: MetadataStore, *, actor: str | None, docs: list[Mapping[str, Any]], source: Source,
                     entry_id: str | None) -> None:
    """One new section (a create), or the new sections of one `mkdir -p` (make-path)."""
    if not docs:
        return
    top = docs[0]
    names = "/".join(d["name"] for d in docs)
    what = f"section {names!r}" if len(docs) == 1 else f"sections {names!r}"
    created = _ids("section", (d["_id"] for d in docs))
    _record(store, actor=actor, action="created", resources=[*created, *_ids("section", [top["parent_section"]])],
            description=f"{what} created in {_place(top['parent_section'])} {_by(actor)}{_for(source)}",
            source=source, result={"created": created}, entry_id=entry_id)


def section_updated(store: MetadataStore, *, actor: str | None, doc: Mapping[str, Any], fields: list[str],
                    entry_id: str) -> None:
    _record(store, actor=actor, action="updated", resources=[typed("section", doc["_id"])],
            description=f"section {doc['name']!r} updated {_by(actor)}: {', '.join(fields)}",
            result={"fields": fields}, entry_id=entry_id)


def section_moved(store: MetadataStore, *, actor: str | None, doc: Mapping[str, Any], from_parent: int | None,
                  to_parent: int | None, fields: list[str], entry_id: str) -> None:
    """A move carries the subtree along; the entry names the moved section and both parents."""
    changed = f" (also changed: {', '.join(fields)})" if fields else ""
    _record(store, actor=actor, action="moved",
            resources=[typed("section", doc["_id"]), *_ids("section", [from_parent, to_parent])],
            description=f"section {doc['name']!r} moved into {_place(to_parent)} {_by(actor)}{changed}",
            result={"from": typed("section", from_parent), "to": typed("section", to_parent), "fields": fields},
            entry_id=entry_id)


def sections_copied(store: MetadataStore, *, actor: str | None, original: Mapping[str, Any], target_id: int | None,
                    sections: list[int], props: list[Mapping[str, Any]], entry_id: str) -> None:
    """A copy creates sections, properties and values; the original is named in the result, not changed."""
    created = _ids("section", sections)
    _record(store, actor=actor, action="created",
            resources=[*created, *_ids("property", (p["_id"] for p in props)), *_ids("value", _values_of(props)),
                       *_ids("section", [target_id])],
            description=f"section {original['name']!r} (section {original['_id']}) copied into {_place(target_id)} "
                        f"{_by(actor)}: {len(sections)} section(s), {len(props)} propertie(s)",
            result={"created": created, "copied_from": typed("section", original["_id"]),
                    "properties_created": len(props)},
            entry_id=entry_id)


def sections_deleted(store: MetadataStore, *, actor: str | None, top: Mapping[str, Any], sections: list[int],
                     properties: list[int], values: list[int], entry_id: str) -> None:
    """A subtree delete is one entry naming every section, property and value that went."""
    deleted = _ids("section", sections)
    _record(store, actor=actor, action="deleted",
            resources=[*deleted, *_ids("property", properties), *_ids("value", values),
                       *_ids("section", [top.get("parent_section")])],
            description=f"section {top['name']!r} deleted {_by(actor)}, with {len(sections) - 1} subsection(s), "
                        f"{len(properties)} propertie(s) and {len(values)} value(s)",
            result={"deleted": deleted, "properties_deleted": len(properties), "values_deleted": len(values)},
            entry_id=entry_id)


def document_imported(store: MetadataStore, *, actor: str | None, target_id: int | None, sections: list[int],
                      props: list[Mapping[str, Any]], source: Source, entry_id: str) -> None:
    """An odML import of any size is one entry."""
    created = _ids("section", sections)
    values = _values_of(props)
    _record(store, actor=actor, action="imported",
            resources=[*created, *_ids("property", (p["_id"] for p in props)), *_ids("value", values),
                       *_ids("section", [target_id])],
            description=f"odML document imported into {_place(target_id)} {_by(actor)}{_for(source)}: "
                        f"{len(sections)} section(s), {len(props)} propertie(s), {len(values)} value(s)",
            source=source, result={"created": created, "properties_created": len(props), "values_created": len(values)},
            entry_id=entry_id)


# --- properties and values ------------------------------------------------------------------------

def property_created(store: MetadataStore, *, actor: str | None, doc: Mapping[str, Any], source: Source,
                     entry_id: str) -> None:
    values = _values_of([doc])
    _record(store, actor=actor, action="created",
            resources=[typed("property", doc["_id"]), *_ids("value", values), typed("section", doc["section"])],
            description=f"property {doc['name']!r} created in section {doc['section']} {_by(actor)}{_for(source)}"
                        f" with {len(values)} value(s)",
            source=source, result={"created": [typed("property", doc["_id"]), *_ids("value", values)]},
            entry_id=entry_id)


def property_updated(store: MetadataStore, *, actor: str | None, doc: Mapping[str, Any], old_section: int,
                     fields: list[str], added: list[int], removed: list[int], entry_id: str) -> None:
    """An update, or a move to another section (action "moved", naming both sections)."""
    moved = doc["section"] != old_section
    if moved:
        action, what = "moved", f"moved into section {doc['section']}"
    else:
        action, what = "updated", f"updated: {', '.join(fields)}"
    _record(store, actor=actor, action=action,
            resources=[typed("property", doc["_id"]), *_ids("value", added), *_ids("value", removed),
                       *_ids("section", [old_section, doc["section"]] if moved else [])],
            description=f"property {doc['name']!r} {what} {_by(actor)}",
            result={"fields": fields, "values_added": _ids("value", added), "values_removed": _ids("value", removed)},
            entry_id=entry_id)


def property_deleted(store: MetadataStore, *, actor: str | None, doc: Mapping[str, Any], entry_id: str) -> None:
    values = _values_of([doc])
    _record(store, actor=actor, action="deleted",
            resources=[typed("property", doc["_id"]), *_ids("value", values), typed("section", doc["section"])],
            description=f"property {doc['name']!r} deleted from section {doc['section']} {_by(actor)}, "
                        f"with {len(values)} value(s)",
            result={"deleted": [typed("property", doc["_id"]), *_ids("value", values)]}, entry_id=entry_id)


def value_changed(store: MetadataStore, *, actor: str | None, action: str, prop: Mapping[str, Any], value_id: int,
                  fields: list[str] | None = None, source: Source = None, entry_id: str) -> None:
    """A value created, updated (`fields`) or deleted one by one: the entry names the value and its property."""
    where = {"created": "in", "updated": "of", "deleted": "from"}[action]
    result = {"fields": fields or []} if action == "updated" else {action: [typed("value", value_id)]}
    changed = f": {', '.join(fields)}" if action == "updated" and fields else ""
    _record(store, actor=actor, action=action, resources=[typed("value", value_id), typed("property", prop["_id"])],
            description=f"value {value_id} {action} {where} property {prop['name']!r} {_by(actor)}{_for(source)}"
                        f"{changed}",
            source=source, result=result, entry_id=entry_id)


# --- permissions (the acl service's changes, applied by the worker) -------------------------------

def permissions_changed(store: MetadataStore, *, event_id: str, changes: list[Mapping[str, Any]],
                        by_username: str | None, reason: str | None) -> None:
    """One entry per group of changes with the same (safety level, shares), `_id` f"{event_id}:{n}"
    (shared/history.py `permission_entries`).

    `changes` are this service's valid section changes (acl.py `ours`). A late change (older than
    the section's current ACL) is still recorded: it happened at the acl service, and the history
    tells what was done, not what is in force. A redelivered event finds the same ids and adds nothing.
    """
    sections = [{**change, "resource": typed("section", parse_id(change["resource"], "section"))} for change in changes]
    for entry in permission_entries(sections, event_id=event_id, by_username=by_username, reason=reason):
        record_action(store.history, **entry)


# --- reading --------------------------------------------------------------------------------------

def history_of(store: MetadataStore, *, resource: str, args: Mapping[str, str], logged_in_as: str | None) -> dict:
    """The answer of `GET /metadata/<type>/<id>/history/`; the caller checked read access first."""
    return resource_history(store.history, resource=resource, args=args, service=SERVICE, logged_in_as=logged_in_as)
