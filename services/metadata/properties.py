"""Properties and their values: every check and write of those lives here.

A property document holds its values in order (`values: [{"id", "value", "text"}]`), so a
property and its values change together in one single-document write. Properties carry their
section's permission read model (`owner`, `safety_level`, `shared_with`, `readers`, `writers`,
`acl_version`) and `ancestors` (the section's, plus the section), so that every listing is one
indexed query. Reading a property or a value needs read access to its section; any change (a new
property or value, an update, a delete) needs write access to it (docs/permissions.md). A property
moved to another section takes that section's read model.

Each property and each value also has an owner of its own, whoever created it (owners.py; a copy
or an odML import belongs to the copier or importer, who owns the new sections too). Taking
something away from a section, deleting or moving a property or removing a value, is for the
section's owner or the owner of what goes: a collaborator may edit the owner's properties and
values but not take them away, and a move never changes an owner (`check_may_take_away`).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping

from services.metadata import events, history
from services.metadata.context import MetadataContext
from services.metadata.dtypes import DtypeError, infer_dtype, normalise_value, normalise_values, value_text
from services.metadata.fields import MISSING, PROPERTY_TEXT, parse_property_body, parse_value_body
from services.metadata.ids import typed
from services.metadata.owners import property_owner, value_owner
from services.metadata.search import property_search_text
from services.metadata.sections import event, now, path_id, property_acl, refresh_search_text, resolve_section
from services.metadata.store import HIDDEN, LIVE
from shared.access import ACL_FIELDS, check_access, newer_than
from shared.errors import BadRequest, Conflict, Forbidden, NotFound, PreconditionFailed
from shared.events import outbox_fields, tombstone_update, with_outbox
from shared.identity import Identity

PROPERTY_FIELDS = ("name", *PROPERTY_TEXT, "uncertainty")


class InvalidValue(BadRequest):
    message_type = "invalid_value"


# --- loading ------------------------------------------------------------------------------------

def load_property(ctx: MetadataContext, identity: Identity, property_id: int, *, need: str = "read") -> dict[str, Any]:
    """The property when `identity` may `need` ("read" or "write") its section (whose read model it carries)."""
    doc = ctx.store.properties.find_one({"_id": property_id, **LIVE}, HIDDEN)
    return dict(check_access(doc, identity, name=f"property_{property_id}", need=need))


def resolve_property(ctx: MetadataContext, identity: Identity, property_id: int, *, name: str) -> dict[str, Any]:
    """A property named in a body field, to add to: 404 `unknown_property`, or write access to its section."""
    doc = ctx.store.properties.find_one({"_id": property_id, **LIVE}, HIDDEN)
    if doc is None:
        raise NotFound(f"`{name}`: there is no property_{property_id}.", message_type="unknown_property",
                       details={"field": name})
    return dict(check_access(doc, identity, name=f"property_{property_id} (`{name}`)", need="write"))


def load_value(ctx: MetadataContext, identity: Identity, value_id: int, *, need: str = "read") -> tuple[dict, dict, int]:
    """(property, value entry, position) of a value, when `identity` may `need` its section."""
    doc = ctx.store.properties.find_one({"values.id": value_id, **LIVE}, HIDDEN)
    doc = dict(check_access(doc, identity, name=f"value_{value_id}", need=need))
    for position, entry in enumerate(doc["values"]):
        if entry["id"] == value_id:
            return doc, entry, position
    raise NotFound(f"There is no value_{value_id}.")  # changed between the query and now


# --- owners -------------------------------------------------------------------------------------

def _owner_fields(identity: Identity) -> dict[str, Any]:
    return {"property_owner": identity.user_id, "property_owner_name": identity.username}


def check_may_take_away(
    doc: Mapping[str, Any], identity: Identity, *, verb: str, entries: Iterable[Mapping[str, Any]] | None = None
) -> None:
    """403 unless `identity` may `verb` ("delete" or "move") the property `doc` with its values
    (`entries` None), or remove the value `entries` from it (`verb` "remove").

    Taking something away from a section is for the section's owner (deleting is the owner's,
    docs/permissions.md) or for the user who owns all that goes: a collaborator may edit the
    owner's properties and values, not take them away. A property's values go wherever it goes."""
    if doc.get("owner") == identity.user_id:
        return
    where = f"section_{doc['section']}"
    if entries is None:
        owner_id, owner_name = property_owner(doc)
        if owner_id != identity.user_id:
            raise Forbidden(f"property_{doc['_id']} belongs to {owner_name}: you may change it, but only its owner "
                            f"or the owner of {where} may {verb} it.", details={"owner": owner_name})
        entries = doc["values"]
    others = [entry for entry in entries if value_owner(doc, entry)[0] != identity.user_id]
    if not others:
        return
    owners = sorted({value_owner(doc, entry)[1] or "another user" for entry in others})
    details = {"owners": owners, "values": [typed("value", entry["id"]) for entry in others[:100]]}
    if verb == "remove":
        raise Forbidden(f"{', '.join(details['values'])} of property_{doc['_id']} belong to {', '.join(owners)}: you "
                        f"may change them, but only their owners or the owner of {where} may remove them.",
                        details=details)
    raise Forbidden(f"property_{doc['_id']} holds values of {', '.join(owners)}, which would go with it: only the "
                    f"owner of {where} may {verb} it.", details=details)


# --- building -----------------------------------------------------------------------------------

def value_entry(value_id: int, value: Any, when: datetime, owner: Identity | None = None) -> dict[str, Any]:
    """A value inside its property's document; without `owner` it belongs to the property's owner."""
    entry = {"id": value_id, "value": value, "text": value_text(value), "date_created": when}
    if owner is not None:
        entry.update(owner=owner.user_id, owner_name=owner.username)
    return entry


def _typed_values(raw: list[Any], dtype: str) -> list[Any]:
    try:
        return normalise_values(raw, dtype)
    except DtypeError as exc:
        raise InvalidValue(f"The values do not fit dtype {dtype}: {exc}.", details={"dtype": dtype, "problem": str(exc)}) from None


def _check_count(ctx: MetadataContext, count: int) -> None:
    if count > ctx.limits.max_values:
        raise BadRequest(f"A property holds at most {ctx.limits.max_values} values.", message_type="too_many_values")


def _name_taken(ctx: MetadataContext, section_id: int, name: str, exclude: int | None = None) -> None:
    clause: dict[str, Any] = {"section": section_id, "name": name, **LIVE}
    if exclude is not None:
        clause["_id"] = {"$ne": exclude}
    if ctx.store.properties.count_documents(clause, limit=1):
        raise Conflict(f"section_{section_id} already has a property named {name!r}; property names are unique "
                       "within a section, as in odML.", message_type="name_taken", details={"name": name})


def _next_position(ctx: MetadataContext, section_id: int) -> int:
    last = ctx.store.properties.find_one({"section": section_id, **LIVE}, {"tree_position": 1}, sort=[("tree_position", -1)])
    return int(last.get("tree_position", 0)) + 1 if last else 0


def new_property_doc(
    ctx: MetadataContext,
    *,
    property_id: int,
    section: Mapping[str, Any],
    fields: Mapping[str, Any],
    dtype: str,
    entries: list[dict[str, Any]],
    tree_position: int,
    created_by: str | None,
    when: datetime,
    owner: Identity | None = None,
) -> dict[str, Any]:
    """A new property document; its owner is `owner`, or the section's owner when None (copies and
    odML imports, whose new sections belong to the caller)."""
    doc = {
        "_id": property_id,
        "section": section["_id"],
        "ancestors": [*section["ancestors"], section["_id"]],
        **{key: fields.get(key) for key in PROPERTY_FIELDS},
        "dtype": dtype,
        "values": entries,
        "tree_position": tree_position,
        "created_by": created_by,
        "date_created": when,
        "last_modified": when,
        "version": 1,
        **property_acl(section),
    }
    doc.update(_owner_fields(owner) if owner is not None else
               {"property_owner": section["owner"], "property_owner_name": section.get("author")})
    doc["search_text"] = property_search_text(doc, ctx.limits.search_text_chars)
    return doc


def property_created_event(doc: Mapping[str, Any]) -> dict:
    return event(events.PropertyCreated(property_id=doc["_id"], section_id=doc["section"], owner=doc["owner"],
                                        name=doc["name"], value_ids=[v["id"] for v in doc["values"]]))


def copy_properties_docs(
    ctx: MetadataContext, identity: Identity, props: list[Mapping[str, Any]], section: Mapping[str, Any], when: datetime
) -> list[dict[str, Any]]:
    """New documents (with their created events) copying `props` into the new `section`; new ids throughout."""
    if not props:
        return []
    property_ids = ctx.store.next_ids("property", len(props))
    value_ids = iter(ctx.store.next_ids("value", sum(len(p.get("values") or ()) for p in props)))
    docs = []
    for prop, property_id in zip(props, property_ids):
        entries = [value_entry(next(value_ids), v["value"], when) for v in prop.get("values") or ()]
        doc = new_property_doc(ctx, property_id=property_id, section=section, fields=prop, dtype=prop["dtype"],
                               entries=entries, tree_position=prop.get("tree_position", 0),
                               created_by=identity.username, when=when)
        docs.append({**doc, **outbox_fields(property_created_event(doc))})
    return docs


# --- properties ---------------------------------------------------------------------------------

def create_property(
    *, ctx: MetadataContext, identity: Identity, body: Any, origin: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A new property with its inline values; `origin` is the history entry's source."""
    changes = parse_property_body(body, creating=True)
    section = resolve_section(ctx, identity, changes.section, name="section_id")
    raw_values = changes.values or []
    dtype = changes.dtype or (infer_dtype(raw_values[0]) if raw_values else "string")
    values = _typed_values(raw_values, dtype)
    _check_count(ctx, len(values))
    _name_taken(ctx, section["_id"], changes.fields["name"])
    position = changes.tree_position if changes.tree_position is not None else _next_position(ctx, section["_id"])
    (property_id,) = ctx.store.next_ids("property")
    when = now()
    entries = [value_entry(i, v, when, identity) for i, v in zip(ctx.store.next_ids("value", len(values)), values)]
    doc = new_property_doc(ctx, property_id=property_id, section=section, fields=changes.fields, dtype=dtype,
                           entries=entries, tree_position=position, created_by=identity.username, when=when,
                           owner=identity)
    created = property_created_event(doc)
    ctx.store.properties.insert_one({**doc, **outbox_fields(created)})
    history.property_created(ctx.store, actor=identity.username, doc=doc, source=origin, entry_id=created["event_id"])
    if sync_section_acl(ctx, section["_id"], doc.get("acl_version")):
        doc = load_property(ctx, identity, property_id)
    refresh_search_text(ctx, section["_id"])
    return doc


def sync_section_acl(ctx: MetadataContext, section_id: int, copied_version: int | None) -> bool:
    """After a property was written with a copy of its section's read model: if an ACL change reached
    the section meanwhile (services/metadata/acl.py), give the section's properties its newer ACL.

    Closes the race between reading the section and writing the property; True if it changed any.
    """
    section = ctx.store.sections.find_one({"_id": section_id}, {"acl_version": 1, **{k: 1 for k in ACL_FIELDS}})
    version = (section or {}).get("acl_version")
    if version is None or version == copied_version:
        return False
    update = {"$set": {**{k: section.get(k) for k in ACL_FIELDS}, "acl_version": version}}
    return ctx.store.properties.update_many({"section": section_id, **newer_than(version)}, update).modified_count > 0


def _matched_values(old: list[dict], new_values: list[Any]) -> list[dict | None]:
    """For each new value, an old entry equal to it (each used once), or None: a value equal to an
    old one keeps that one's id and owner (labels stay)."""
    unused = list(old)
    matched: list[dict | None] = []
    for value in new_values:
        match = next((e for e in unused if e["value"] == value
                      and isinstance(e["value"], bool) == isinstance(value, bool)), None)
        if match is not None:
            unused.remove(match)
        matched.append(match)
    return matched


def _merge_values(ctx: MetadataContext, identity: Identity, matched: list[dict | None], new_values: list[Any],
                  when: datetime) -> list[dict]:
    """The new list of entries: the matched old ones, and new values of `identity` for the rest."""
    ids = iter(ctx.store.next_ids("value", sum(1 for e in matched if e is None)))
    return [e if e is not None else value_entry(next(ids), v, when, identity) for e, v in zip(matched, new_values)]


def update_property(*, ctx: MetadataContext, identity: Identity, raw_id: str, body: Any) -> dict[str, Any]:
    """Change fields; `values` replaces the list; a new `dtype` must fit every value; `section_id` moves it."""
    changes = parse_property_body(body, creating=False)
    doc = load_property(ctx, identity, path_id(raw_id, "property"), need="write")
    values = {k: v for k, v in changes.fields.items() if doc.get(k) != v}
    section_id = doc["section"]
    unset: dict[str, str] = {}
    if changes.section is not None and changes.section != doc["section"]:
        # Moving takes the property away from its section, and needs write access to the new one;
        # the property takes the new section's ACL and keeps its owner.
        check_may_take_away(doc, identity, verb="move")
        section = resolve_section(ctx, identity, changes.section, name="section_id")
        section_id = section["_id"]
        acl = property_acl(section)
        owner_id, owner_name = property_owner(doc)
        values.update(section=section_id, ancestors=[*section["ancestors"], section_id], **acl,
                      property_owner=owner_id, property_owner_name=owner_name)
        if "acl_version" not in acl and "acl_version" in doc:
            unset["acl_version"] = ""
        values["tree_position"] = _next_position(ctx, section_id)
    if changes.tree_position is not None:
        values["tree_position"] = changes.tree_position
    dtype = changes.dtype or doc["dtype"]
    when = now()
    entries = doc["values"]
    if changes.values is not None or dtype != doc["dtype"]:
        raw = changes.values if changes.values is not None else [e["value"] for e in doc["values"]]
        typed_values = _typed_values(raw, dtype)
        _check_count(ctx, len(typed_values))
        if changes.values is None:  # only the dtype changed: the same values, converted, keep their ids
            entries = [{**e, "value": v, "text": value_text(v)} for e, v in zip(doc["values"], typed_values)]
        else:
            matched = _matched_values(doc["values"], typed_values)
            kept = {e["id"] for e in matched if e is not None}
            check_may_take_away(doc, identity, verb="remove", entries=[e for e in doc["values"] if e["id"] not in kept])
            entries = _merge_values(ctx, identity, matched, typed_values, when)
        if dtype != doc["dtype"]:
            values["dtype"] = dtype
        if [e["id"] for e in entries] != [e["id"] for e in doc["values"]] or entries != doc["values"]:
            values["values"] = entries
    if "name" in values or section_id != doc["section"]:
        _name_taken(ctx, section_id, values.get("name", doc["name"]), exclude=doc["_id"])
    if not values:
        return doc
    merged = {**doc, **values}
    values["search_text"] = property_search_text(merged, ctx.limits.search_text_chars)
    old_ids, new_ids = {e["id"] for e in doc["values"]}, {e["id"] for e in entries}
    changed_fields = sorted(k for k in values if k not in ("search_text", "ancestors", "owner", "author", "acl_version",
                                                           "safety_level", "shared_with", "readers", "writers",
                                                           "property_owner", "property_owner_name"))
    updated = events.PropertyUpdated(property_id=doc["_id"], section_id=section_id, fields=changed_fields,
                                     value_ids_added=sorted(new_ids - old_ids), value_ids_removed=sorted(old_ids - new_ids))
    update: dict[str, Any] = {"$set": {**values, "last_modified": when}}
    if unset:
        update["$unset"] = unset
    envelope = event(updated)
    _write(ctx, doc, update, envelope)
    history.property_updated(ctx.store, actor=identity.username, doc=merged, old_section=doc["section"],
                             fields=changed_fields, added=updated.value_ids_added, removed=updated.value_ids_removed,
                             entry_id=envelope["event_id"])
    if section_id != doc["section"]:
        sync_section_acl(ctx, section_id, values.get("acl_version"))
    refresh_search_text(ctx, section_id)
    if section_id != doc["section"]:
        refresh_search_text(ctx, doc["section"])
    return load_property(ctx, identity, doc["_id"])


def _write(ctx: MetadataContext, doc: Mapping[str, Any], update: dict[str, Any], *envelopes: dict) -> None:
    update = {**update, "$inc": {"version": 1}}
    result = ctx.store.properties.update_one({"_id": doc["_id"], "version": doc["version"], **LIVE},
                                             with_outbox(update, *envelopes))
    if result.modified_count != 1:
        raise PreconditionFailed(f"property_{doc['_id']} was changed by another request at the same time; try again.")


def delete_property(*, ctx: MetadataContext, identity: Identity, raw_id: str) -> dict[str, Any]:
    """Delete a property with its values: for the section's owner, or the owner of it and all its values."""
    doc = load_property(ctx, identity, path_id(raw_id, "property"), need="write")
    check_may_take_away(doc, identity, verb="delete")
    deleted = events.PropertyDeleted(property_id=doc["_id"], section_id=doc["section"], owner=doc["owner"],
                                     value_ids=[v["id"] for v in doc["values"]])
    envelope = event(deleted)
    # Guarded by the version that was checked: a value added meanwhile is not deleted unseen.
    result = ctx.store.properties.update_one({"_id": doc["_id"], "version": doc.get("version"), **LIVE},
                                             tombstone_update(envelope))
    if result.modified_count != 1:
        raise PreconditionFailed(f"property_{doc['_id']} was changed by another request at the same time; try again.")
    history.property_deleted(ctx.store, actor=identity.username, doc=doc, entry_id=envelope["event_id"])
    refresh_search_text(ctx, doc["section"])
    return doc


# --- values -------------------------------------------------------------------------------------

def _typed_value(value: Any, dtype: str) -> Any:
    try:
        return normalise_value(value, dtype)
    except DtypeError as exc:
        raise InvalidValue(f"The value does not fit dtype {dtype}: {exc}.", details={"dtype": dtype, "problem": str(exc)}) from None


def _values_update(ctx: MetadataContext, doc: Mapping[str, Any], entries: list[dict], when: datetime) -> dict[str, Any]:
    merged = {**doc, "values": entries}
    return {"$set": {"values": entries, "search_text": property_search_text(merged, ctx.limits.search_text_chars),
                     "last_modified": when}}


def create_value(
    *, ctx: MetadataContext, identity: Identity, body: Any, origin: Mapping[str, Any] | None = None
) -> tuple[dict, dict, int]:
    """A new value of a property; `origin` is the history entry's source."""
    changes = parse_value_body(body, creating=True)
    doc = resolve_property(ctx, identity, changes.property, name="property_id")
    value = _typed_value(changes.value, doc["dtype"])
    _check_count(ctx, len(doc["values"]) + 1)
    (value_id,) = ctx.store.next_ids("value")
    when = now()
    entries = list(doc["values"])
    position = len(entries) if changes.position is None else min(changes.position, len(entries))
    entries.insert(position, value_entry(value_id, value, when, identity))
    created = event(events.ValueCreated(value_id=value_id, property_id=doc["_id"], section_id=doc["section"]))
    _write(ctx, doc, _values_update(ctx, doc, entries, when), created)
    history.value_changed(ctx.store, actor=identity.username, action="created", prop=doc, value_id=value_id,
                          source=origin, entry_id=created["event_id"])
    refresh_search_text(ctx, doc["section"])
    return load_value(ctx, identity, value_id)


def update_value(*, ctx: MetadataContext, identity: Identity, raw_id: str, body: Any) -> tuple[dict, dict, int]:
    changes = parse_value_body(body, creating=False)
    doc, entry, position = load_value(ctx, identity, path_id(raw_id, "value"), need="write")
    if changes.property is not None and changes.property != doc["_id"]:
        raise BadRequest("A value cannot move to another property; create it there and delete this one.",
                         message_type="invalid_fields", details={"property_id": "cannot change"})
    entries = list(doc["values"])
    new_entry = dict(entry)
    if changes.value is not MISSING:
        value = _typed_value(changes.value, doc["dtype"])
        new_entry.update(value=value, text=value_text(value))
    entries.pop(position)
    new_position = position if changes.position is None else min(changes.position, len(entries))
    entries.insert(new_position, new_entry)
    if entries == doc["values"]:
        return doc, entry, position
    when = now()
    updated = event(events.ValueUpdated(value_id=entry["id"], property_id=doc["_id"], section_id=doc["section"]))
    _write(ctx, doc, _values_update(ctx, doc, entries, when), updated)
    fields = [name for name, changed in (("value", new_entry != entry), ("position", new_position != position)) if changed]
    history.value_changed(ctx.store, actor=identity.username, action="updated", prop=doc, value_id=entry["id"],
                          fields=fields, entry_id=updated["event_id"])
    refresh_search_text(ctx, doc["section"])
    return load_value(ctx, identity, entry["id"])


def delete_value(*, ctx: MetadataContext, identity: Identity, raw_id: str) -> tuple[dict, dict, int]:
    doc, entry, position = load_value(ctx, identity, path_id(raw_id, "value"), need="write")
    check_may_take_away(doc, identity, verb="remove", entries=[entry])
    entries = [e for e in doc["values"] if e["id"] != entry["id"]]
    deleted = event(events.ValueDeleted(value_id=entry["id"], property_id=doc["_id"], section_id=doc["section"]))
    _write(ctx, doc, _values_update(ctx, doc, entries, now()), deleted)
    history.value_changed(ctx.store, actor=identity.username, action="deleted", prop=doc, value_id=entry["id"],
                          entry_id=deleted["event_id"])
    refresh_search_text(ctx, doc["section"])
    return doc, entry, position


def resolve_values(*, ctx: MetadataContext, value_ids: Iterable[int]) -> tuple[list[dict[str, Any]], list[int]]:
    """For other services (labels): each value with its property, section and read model; and the missing ids."""
    wanted = list(dict.fromkeys(value_ids))
    found: dict[int, dict[str, Any]] = {}
    projection = {"name": 1, "section": 1, "dtype": 1, "unit": 1, "values": 1, "owner": 1, "author": 1,
                  "safety_level": 1, "shared_with": 1, "readers": 1, "writers": 1}
    for prop in ctx.store.properties.find({"values.id": {"$in": wanted}, **LIVE}, projection):
        for position, entry in enumerate(prop["values"]):
            if entry["id"] in wanted:
                found[entry["id"]] = {
                    "id": typed("value", entry["id"]),
                    "value_id": entry["id"],
                    "value": entry["value"],
                    "position": position,
                    "property_id": prop["_id"],
                    "property_name": prop.get("name"),
                    "section_id": prop["section"],
                    "dtype": prop.get("dtype"),
                    "unit": prop.get("unit"),
                    "owner": prop.get("owner"),
                    "safety_level": prop.get("safety_level"),
                    "readers": prop.get("readers") or [],
                    "writers": prop.get("writers") or [],
                }
    return [found[i] for i in wanted if i in found], [i for i in wanted if i not in found]

