"""Creating, updating, moving, copying and deleting sections: every check and write of those lives here.

A section shows the datafiles linked into it (links.py) that the caller may read: the files
service, which owns datafiles and their permissions, says which in one call per request
(clients.py), so a section agrees with the datafiles themselves at every moment.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from services.metadata import events, history
from services.metadata.clients import FilesUnavailable
from services.metadata.context import MetadataContext
from services.metadata.fields import MISSING, SECTION_TEXT, SectionChanges, parse_section_body
from services.metadata.ids import InvalidId, parse_id, parse_optional_section, typed
from services.metadata.search import section_search_text
from services.metadata.store import HIDDEN, LIVE
from shared.access import ACL_FIELDS, PRIVATE, acl_of, check_access, new_acl, read_filter
from shared.params import parse_flag as flag
from shared.errors import BadRequest, Conflict, NotFound, PreconditionFailed, ServiceUnavailable
from shared.events import envelope_for, outbox_fields, tombstone_update, with_outbox
from shared.identity import Identity

log = logging.getLogger(__name__)

SECTION_COPY_FIELDS = ("name", *SECTION_TEXT)
_BIG = 1_000_000_000
# Shallowest first; siblings together, in their order (root sections grouped per owner).
TREE_ORDER = [("depth", 1), ("parent_section", 1), ("root_owner", 1), ("tree_position", 1), ("_id", 1)]


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def event(payload: Any) -> dict:
    return envelope_for(payload, producer=events.PRODUCER)


# --- ids and loading ----------------------------------------------------------------------------

def path_id(raw: str, kind: str) -> int:
    """An id from the URL path: anything that is not an id of that kind is a 404."""
    try:
        return parse_id(raw, kind)
    except InvalidId as exc:
        raise NotFound(f"No such {kind}: {exc}.") from None


def param_id(raw: Any, kind: str, name: str) -> int:
    """An id from a parameter or a body field: a malformed one is a 400 naming the field."""
    try:
        return parse_id(raw, kind)
    except InvalidId as exc:
        raise BadRequest(f"`{name}`: {exc}.", message_type="invalid_id", details={"field": name}) from None


def find_section(ctx: MetadataContext, section_id: int) -> dict[str, Any] | None:
    return ctx.store.sections.find_one({"_id": section_id, **LIVE}, HIDDEN)


def load_section(ctx: MetadataContext, identity: Identity, section_id: int, *, need: str = "read") -> dict[str, Any]:
    """The section in the path when `identity` may `need` ("read", "write", "owner") it: else 404,
    401 (anonymous) or 403 (docs/permissions.md, shared/access.py `check_access`)."""
    return dict(check_access(find_section(ctx, section_id), identity, name=f"section_{section_id}", need=need))


def resolve_section(
    ctx: MetadataContext, identity: Identity, section_id: int | None, *, name: str, need: str = "write"
) -> dict[str, Any] | None:
    """A section named by a parameter or body field (None: the root); 404 `unknown_section` if missing,
    401/403 as `check_access` when `identity` may not `need` it."""
    if section_id is None:
        return None
    doc = find_section(ctx, section_id)
    if doc is None:
        raise NotFound(f"`{name}`: there is no section_{section_id}.", message_type="unknown_section",
                       details={"field": name})
    return dict(check_access(doc, identity, name=f"section_{section_id} (`{name}`)", need=need))


# --- the tree -------------------------------------------------------------------------------------

def child_ancestors(parent: Mapping[str, Any] | None) -> list[int]:
    return [*parent["ancestors"], parent["_id"]] if parent else []


def siblings_filter(parent_id: int | None, owner: int) -> dict[str, Any]:
    """The siblings of a new child of `parent_id`; root sections are siblings per owner."""
    clause: dict[str, Any] = {"parent_section": parent_id, **LIVE}
    if parent_id is None:
        clause["owner"] = owner
    return clause


def name_taken(ctx: MetadataContext, parent_id: int | None, owner: int, name: str, exclude: int | None = None) -> bool:
    clause = {**siblings_filter(parent_id, owner), "name": name}
    if exclude is not None:
        clause["_id"] = {"$ne": exclude}
    return ctx.store.sections.count_documents(clause, limit=1) > 0


def free_name(ctx: MetadataContext, parent_id: int | None, owner: int, name: str) -> str:
    """`name`, or `name (2)`, `name (3)`, ... whichever is free among the siblings (as odML wants)."""
    if not name_taken(ctx, parent_id, owner, name):
        return name
    pattern = re.compile(rf"^{re.escape(name)} \((\d+)\)$")
    taken = {
        int(m.group(1))
        for doc in ctx.store.sections.find({**siblings_filter(parent_id, owner), "name": {"$regex": pattern.pattern}}, {"name": 1})
        if (m := pattern.match(doc["name"]))
    }
    number = 2
    while number in taken:
        number += 1
    return f"{name} ({number})"


def require_free_name(ctx: MetadataContext, parent_id: int | None, owner: int, name: str, exclude: int | None = None) -> None:
    if name_taken(ctx, parent_id, owner, name, exclude):
        where = typed("section", parent_id) if parent_id else "the root"
        raise Conflict(f"{where} already has a section named {name!r}; sibling names are unique, as in odML.",
                       message_type="name_taken", details={"name": name})


def next_position(ctx: MetadataContext, parent_id: int | None, owner: int) -> int:
    last = ctx.store.sections.find_one(siblings_filter(parent_id, owner), {"tree_position": 1}, sort=[("tree_position", -1)])
    return int(last.get("tree_position", 0)) + 1 if last else 0


def subtree(ctx: MetadataContext, section_id: int, projection: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None) -> list[dict]:
    """The section's live descendants (one indexed query on `ancestors`), shallowest first, in sibling order."""
    query = {"ancestors": section_id, **LIVE, **(extra or {})}
    cursor = ctx.store.sections.find(query, dict(projection) if projection else HIDDEN)
    return list(cursor.sort(TREE_ORDER))


def connected(top: Mapping[str, Any], descendants: Iterable[Mapping[str, Any]]) -> list[dict]:
    """`top` and those descendants whose parent is kept too (shallowest first in, so one pass suffices)."""
    kept_ids = {top["_id"]}
    kept = [dict(top)]
    for doc in descendants:
        if doc.get("parent_section") in kept_ids:
            kept_ids.add(doc["_id"])
            kept.append(dict(doc))
    return kept


# --- permissions of new sections ----------------------------------------------------------------

def inherited_acl(parent: Mapping[str, Any] | None, identity: Identity) -> dict[str, Any]:
    """Private at the root; under a parent, the parent's ACL (seed: "as for the parent section").

    When a collaborator creates inside someone else's section, the parent's owner keeps read and
    write access to the new section, so nothing in one's own tree is hidden from one.
    """
    acl = new_acl(owner=identity.user_id, owner_name=identity.username, inherited=parent)
    acl["author"] = identity.username
    return acl


def given_acl(raw: Any, identity: Identity) -> dict[str, Any] | None:
    """The ACL the files service asks the sections of a conversion to start with (their datafile's,
    never the broader one of the section they land in), checked; None when not given."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise BadRequest("`acl` must be an object with `safety_level` and `shared_with`.", message_type="invalid_fields")
    level, shared = raw.get("safety_level", PRIVATE), raw.get("shared_with") or {}
    readers, writers = raw.get("readers") or [], raw.get("writers") or []
    if level not in (1, 2, 3) or isinstance(level, bool) or not isinstance(shared, dict) \
            or not all(isinstance(k, str) and v in (1, 2) and not isinstance(v, bool) for k, v in shared.items()) \
            or not all(isinstance(u, int) and not isinstance(u, bool) for u in [*readers, *writers]):
        raise BadRequest("`acl`: `safety_level` 1, 2 or 3, `shared_with` {username: 1 or 2}, `readers` and "
                         "`writers` lists of user ids.", message_type="invalid_fields")
    inherited = {"owner": identity.user_id, "safety_level": level, "shared_with": shared, "readers": readers,
                 "writers": writers}
    acl = new_acl(owner=identity.user_id, owner_name=identity.username, inherited=inherited)
    acl["author"] = identity.username
    return acl


def property_acl(section: Mapping[str, Any]) -> dict[str, Any]:
    """The read model a section passes to its properties: a copy of its own, `acl_version` included
    (the properties are part of the section's resource: the acl service's changes to `section_<id>`
    go to both under the same version guard, services/metadata/acl.py)."""
    acl = {"owner": section["owner"], "author": section.get("author"), **{k: section.get(k) for k in ACL_FIELDS}}
    if section.get("acl_version") is not None:
        acl["acl_version"] = section["acl_version"]
    return acl


# --- create -------------------------------------------------------------------------------------

def new_section_doc(
    *,
    section_id: int,
    fields: Mapping[str, Any],
    parent: Mapping[str, Any] | None,
    acl: Mapping[str, Any],
    tree_position: int,
    when: datetime,
) -> dict[str, Any]:
    ancestors = child_ancestors(parent)
    doc = {
        "_id": section_id,
        "name": fields["name"],
        **{key: fields.get(key) for key in SECTION_TEXT},
        "parent_section": parent["_id"] if parent else None,
        "ancestors": ancestors,
        "depth": len(ancestors),
        "tree_position": tree_position,
        "root_owner": acl["owner"] if parent is None else None,  # orders root sections per owner
        "date_created": when,
        "last_modified": when,
        "version": 1,
        **acl,
    }
    doc["search_text"] = section_search_text(doc)
    return doc


def created_event(doc: Mapping[str, Any], *, source: str, copied_from: int | None = None,
                  datafile_ids: list[int] | None = None) -> dict:
    return event(events.SectionCreated(
        section_id=doc["_id"], owner=doc["owner"], parent_section=doc["parent_section"], ancestors=list(doc["ancestors"]),
        source=source, copied_from=copied_from, datafile_ids=list(datafile_ids or []), acl=acl_of(doc),
    ))


def create_section(
    *, ctx: MetadataContext, identity: Identity, body: Any, source: str = "api", origin: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A new section; `origin` is the history entry's source (shared/history.py `source_from_header`)."""
    changes = parse_section_body(body, creating=True)
    parent_id = changes.parent if changes.parent is not MISSING else None
    parent = resolve_section(ctx, identity, parent_id, name="parent_section")
    doc, event_id = insert_section(ctx, identity, changes.fields, parent, changes.tree_position, source=source)
    history.sections_created(ctx.store, actor=identity.username, docs=[doc], source=origin, entry_id=event_id)
    return doc


def insert_section(
    ctx: MetadataContext,
    identity: Identity,
    fields: Mapping[str, Any],
    parent: Mapping[str, Any] | None,
    tree_position: int | None,
    *,
    source: str,
    acl: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], str]:
    """The new section and the id of its created event (the id of its history entry); it starts
    with its parent's ACL, or `acl` when given (given_acl)."""
    parent_id = parent["_id"] if parent else None
    require_free_name(ctx, parent_id, identity.user_id, fields["name"])
    position = tree_position if tree_position is not None else next_position(ctx, parent_id, identity.user_id)
    (section_id,) = ctx.store.next_ids("section")
    doc = new_section_doc(section_id=section_id, fields=fields, parent=parent,
                          acl=dict(acl) if acl is not None else inherited_acl(parent, identity),
                          tree_position=position, when=now())
    created = created_event(doc, source=source)
    ctx.store.sections.insert_one({**doc, **outbox_fields(created)})
    return doc, created["event_id"]


def create_path(
    *, ctx: MetadataContext, identity: Identity, parent_id: int | None, path: list[str], source: str = "archive",
    origin: Mapping[str, Any] | None = None, acl: Mapping[str, Any] | None = None,
) -> list[tuple[dict[str, Any], bool]]:
    """`mkdir -p` under `parent_id`: each name reuses a writable sibling of that name or creates it
    (with `acl` when given: an archive's folders start with their datafile's ACL).

    The sections it creates are one history entry (with the first created event's id)."""
    parent = resolve_section(ctx, identity, parent_id, name="parent_section")
    out = []
    event_ids = []
    for name in path:
        parent_key = parent["_id"] if parent else None
        existing = ctx.store.sections.find_one({**siblings_filter(parent_key, identity.user_id), "name": name}, HIDDEN)
        if existing is not None:
            check_access(existing, identity, name=f"{typed('section', existing['_id'])} ({name!r})", need="write")
            out.append((existing, False))
            parent = existing
            continue
        doc, event_id = insert_section(ctx, identity, {"name": name}, parent, None, source=source, acl=acl)
        event_ids.append(event_id)
        out.append((doc, True))
        parent = doc
    if event_ids:
        history.sections_created(ctx.store, actor=identity.username, docs=[d for d, new in out if new], source=origin,
                                 entry_id=event_ids[0])
    return out


# --- update and move ----------------------------------------------------------------------------

def refresh_search_text(ctx: MetadataContext, section_id: int) -> None:
    """Recompute a section's `search_text` from its fields and its properties (one indexed query)."""
    section = ctx.store.sections.find_one({"_id": section_id, **LIVE}, {"name": 1, "description": 1, "type": 1})
    if section is None:
        return
    props = ctx.store.properties.find({"section": section_id, **LIVE}, {"name": 1, "values.text": 1})
    text = section_search_text(section, props, ctx.limits.search_text_chars)
    ctx.store.sections.update_one({"_id": section_id}, {"$set": {"search_text": text}})


def update_section(*, ctx: MetadataContext, identity: Identity, raw_id: str, body: Any) -> dict[str, Any]:
    """Change fields; a new `parent_section` moves the section (and its subtree) there."""
    changes = parse_section_body(body, creating=False)
    doc = load_section(ctx, identity, path_id(raw_id, "section"), need="write")
    if changes.parent is not MISSING and changes.parent != doc["parent_section"]:
        return move_section(ctx=ctx, identity=identity, doc=doc, target_id=changes.parent, changes=changes)
    return _apply_changes(ctx, identity, doc, changes)


def _apply_changes(ctx: MetadataContext, identity: Identity, doc: Mapping[str, Any], changes: SectionChanges) -> dict[str, Any]:
    values = {k: v for k, v in changes.fields.items() if doc.get(k) != v}
    if changes.tree_position is not None and changes.tree_position != doc.get("tree_position"):
        values["tree_position"] = changes.tree_position
    if not values:
        return dict(doc)
    if "name" in values:
        require_free_name(ctx, doc["parent_section"], doc["owner"], values["name"], exclude=doc["_id"])
    updated = event(events.SectionUpdated(section_id=doc["_id"], owner=doc["owner"], fields=sorted(values)))
    result = ctx.store.sections.update_one(
        {"_id": doc["_id"], "version": doc["version"], **LIVE},
        with_outbox({"$set": {**values, "last_modified": now()}, "$inc": {"version": 1}}, updated),
    )
    if result.modified_count != 1:
        raise PreconditionFailed(f"section_{doc['_id']} was changed by another request at the same time; try again.")
    history.section_updated(ctx.store, actor=identity.username, doc={**doc, **values}, fields=sorted(values),
                            entry_id=updated["event_id"])
    if {"name", "description", "type"} & set(values):
        refresh_search_text(ctx, doc["_id"])
    return load_section(ctx, identity, doc["_id"])


def check_no_cycle(doc: Mapping[str, Any], target: Mapping[str, Any] | None) -> None:
    if target is None:
        return
    if target["_id"] == doc["_id"] or doc["_id"] in target.get("ancestors", ()):
        raise BadRequest(
            f"section_{doc['_id']} cannot move into section_{target['_id']}: that is the section itself or inside it.",
            message_type="cycle", details={"source": typed("section", doc["_id"]), "target": typed("section", target["_id"])},
        )


def move_section(
    *, ctx: MetadataContext, identity: Identity, doc: Mapping[str, Any], target_id: int | None,
    changes: SectionChanges | None = None,
) -> dict[str, Any]:
    """Move `doc` with its subtree under `target_id` (None: the root); body fields change it too.

    The owner of the moved section only, into a section they may write. The moved sections keep
    their ACLs (docs/permissions.md): the acl service learns the new parent from the moved event.
    """
    changes = changes or SectionChanges()
    check_access(doc, identity, name=f"section_{doc['_id']}", need="owner")
    target = resolve_section(ctx, identity, target_id, name="target_section_id")
    check_no_cycle(doc, target)
    target_key = target["_id"] if target else None
    if target_key == doc["parent_section"]:
        return _apply_changes(ctx, identity, doc, changes)
    name = changes.fields.get("name", doc["name"])
    require_free_name(ctx, target_key, doc["owner"], name, exclude=doc["_id"])
    old_ancestors, new_ancestors = list(doc["ancestors"]), child_ancestors(target)
    position = changes.tree_position if changes.tree_position is not None else next_position(ctx, target_key, doc["owner"])
    values = {k: v for k, v in changes.fields.items() if doc.get(k) != v}
    moved = event(events.SectionMoved(section_id=doc["_id"], owner=doc["owner"], from_parent=doc["parent_section"],
                                      to_parent=target_key, ancestors=new_ancestors))
    envelopes = [moved]
    if values:
        envelopes.append(event(events.SectionUpdated(section_id=doc["_id"], owner=doc["owner"], fields=sorted(values))))
    update = {"$set": {**values, "parent_section": target_key, "ancestors": new_ancestors, "depth": len(new_ancestors),
                       "tree_position": position, "root_owner": doc["owner"] if target is None else None,
                       "last_modified": now()}, "$inc": {"version": 1}}
    result = ctx.store.sections.update_one({"_id": doc["_id"], "version": doc["version"], **LIVE},
                                           with_outbox(update, *envelopes))
    if result.modified_count != 1:
        raise PreconditionFailed(f"section_{doc['_id']} was changed by another request at the same time; try again.")
    # The subtree follows: its ancestors lists swap the old path above the moved section for the new one.
    rebased = {"$concatArrays": [new_ancestors, {"$slice": ["$ancestors", len(old_ancestors), _BIG]}]}
    ctx.store.sections.update_many({"ancestors": doc["_id"]},
                                   [{"$set": {"ancestors": rebased}}, {"$set": {"depth": {"$size": "$ancestors"}}}])
    ctx.store.properties.update_many({"ancestors": doc["_id"]}, [{"$set": {"ancestors": rebased}}])
    history.section_moved(ctx.store, actor=identity.username, doc={**doc, **values}, from_parent=doc["parent_section"],
                          to_parent=target_key, fields=sorted(values), entry_id=moved["event_id"])
    if {"name", "description", "type"} & set(values):
        refresh_search_text(ctx, doc["_id"])
    return load_section(ctx, identity, doc["_id"])


# --- copy ---------------------------------------------------------------------------------------

@dataclass
class CopyResult:
    top: dict[str, Any]
    sections: list[int] = field(default_factory=list)
    properties: list[int] = field(default_factory=list)
    datafile_links: int = 0
    readable_datafiles: set[int] = field(default_factory=set)  # checked for the copy: no need to ask again


def copy_section(
    *,
    ctx: MetadataContext,
    identity: Identity,
    source: Mapping[str, Any],
    target_id: int | None,
    changes: SectionChanges,
    with_properties: bool,
    with_datafiles: bool,
    recursive: bool,
) -> CopyResult:
    """Copy `source` (and, if recursive, the part of its subtree you may read) under `target_id`.

    Copies belong to you and take the target's permissions. Properties and values get new ids;
    datafiles are never duplicated: the copies show the same files (links), those you may read.
    All is checked first.
    """
    from services.metadata.properties import copy_properties_docs

    target = resolve_section(ctx, identity, target_id, name="target_section_id")
    target_key = target["_id"] if target else None
    tree = [dict(source)]
    if recursive:
        tree = connected(source, subtree(ctx, source["_id"], extra=read_filter(identity)))
    if len(tree) > ctx.limits.max_tree:
        raise BadRequest(f"At most {ctx.limits.max_tree} sections can be copied at once; this has {len(tree)}.",
                         message_type="too_many_sections")
    if "name" in changes.fields:
        top_name = changes.fields["name"]
        require_free_name(ctx, target_key, identity.user_id, top_name)
    else:
        top_name = free_name(ctx, target_key, identity.user_id, source["name"])
    old_ids = [d["_id"] for d in tree]
    props_by_section: dict[int, list[dict]] = {}
    if with_properties:
        for prop in ctx.store.properties.find({"section": {"$in": old_ids}, **LIVE, **read_filter(identity)}, HIDDEN).sort(
                [("section", 1), ("tree_position", 1), ("_id", 1)]):
            props_by_section.setdefault(prop["section"], []).append(prop)
    links_by_section: dict[int, list[int]] = {}
    readable: set[int] = set()
    if with_datafiles:
        for link in ctx.store.links.find({"section": {"$in": old_ids}}).sort("datafile", 1):
            if link["datafile"] not in links_by_section.setdefault(link["section"], []):
                links_by_section[link["section"]].append(link["datafile"])
        # A copy links only what you may read, and never links a file unchecked.
        readable = readable_datafiles(ctx, identity, {d for ids in links_by_section.values() for d in ids}, strict=True)
        links_by_section = {s: [d for d in ids if d in readable] for s, ids in links_by_section.items()}

    new_ids = dict(zip(old_ids, ctx.store.next_ids("section", len(old_ids))))
    acl = inherited_acl(target, identity)
    when = now()
    new_docs: dict[int, dict] = {}
    section_docs, prop_docs, link_docs = [], [], []
    event_ids: list[str] = []  # the top section's first: the id of the copy's history entry
    for old in tree:
        is_top = old["_id"] == source["_id"]
        parent = target if is_top else new_docs[old["parent_section"]]
        fields = {key: old.get(key) for key in SECTION_COPY_FIELDS}
        if is_top:
            fields.update(changes.fields)
            fields["name"] = top_name
            position = changes.tree_position if changes.tree_position is not None else next_position(ctx, target_key, identity.user_id)
        else:
            position = old.get("tree_position", 0)
        doc = new_section_doc(section_id=new_ids[old["_id"]], fields=fields, parent=parent, acl=acl,
                              tree_position=position, when=when)
        new_docs[old["_id"]] = doc
        copies = copy_properties_docs(ctx, identity, props_by_section.get(old["_id"], []), doc, when)
        doc["search_text"] = section_search_text(doc, copies, ctx.limits.search_text_chars)
        datafiles = links_by_section.get(old["_id"], [])
        link_docs += [link_doc(doc["_id"], datafile, "copy", identity.user_id) for datafile in datafiles]
        created = created_event(doc, source="copy", copied_from=old["_id"], datafile_ids=datafiles)
        event_ids.append(created["event_id"])
        section_docs.append({**doc, **outbox_fields(created)})
        prop_docs += copies
    write_tree(ctx, section_docs, prop_docs, link_docs)
    history.sections_copied(ctx.store, actor=identity.username, original=source, target_id=target_key,
                            sections=[d["_id"] for d in section_docs], props=prop_docs,
                            entry_id=event_ids[0])
    return CopyResult(
        top=load_section(ctx, identity, new_ids[source["_id"]]),
        sections=[d["_id"] for d in section_docs],
        properties=[d["_id"] for d in prop_docs],
        datafile_links=len(link_docs),
        readable_datafiles=readable,
    )


def link_doc(section_id: int, datafile_id: int, kind: str, user_id: int | None) -> dict[str, Any]:
    return {"_id": f"{section_id}:{datafile_id}", "section": section_id, "datafile": datafile_id, "kind": kind,
            "linked_by": user_id, "date_created": now()}


def write_tree(ctx: MetadataContext, section_docs: list[dict], prop_docs: list[dict], link_docs: list[dict]) -> None:
    """Insert new sections, properties and links; on any failure remove what was inserted and re-raise."""
    try:
        if section_docs:
            ctx.store.sections.insert_many(section_docs, ordered=True)
        if prop_docs:
            ctx.store.properties.insert_many(prop_docs, ordered=True)
        if link_docs:
            ctx.store.links.insert_many(link_docs, ordered=True)
    except BaseException:
        ctx.store.links.delete_many({"_id": {"$in": [d["_id"] for d in link_docs]}})
        ctx.store.properties.delete_many({"_id": {"$in": [d["_id"] for d in prop_docs]}})
        ctx.store.sections.delete_many({"_id": {"$in": [d["_id"] for d in section_docs]}})
        raise


# --- delete -------------------------------------------------------------------------------------

@dataclass
class DeleteResult:
    sections: list[int]
    properties: int
    values: int
    datafile_links: int


def delete_section(*, ctx: MetadataContext, identity: Identity, raw_id: str, force: bool) -> DeleteResult:
    """Delete a section with its whole subtree, properties, values and datafile links (owner only).

    With collaborators (another user may write the section or anything below it, or owns a
    section below it) the delete is refused with 409 unless `force`. Datafiles are not deleted.
    """
    doc = load_section(ctx, identity, path_id(raw_id, "section"), need="owner")
    tree = [doc, *subtree(ctx, doc["_id"], {"owner": 1, "writers": 1, "parent_section": 1, "depth": 1, "author": 1})]
    collaborators = sorted({w for d in tree for w in d.get("writers") or () if w != identity.user_id}
                           | {d["owner"] for d in tree if d["owner"] != identity.user_id})
    if collaborators and not force:
        raise Conflict(
            f"Other users can change section_{doc['_id']} or sections below it; delete with force=true to delete anyway.",
            message_type="has_collaborators",
            details={"collaborators": collaborators,
                     "sections_of_others": [typed("section", d["_id"]) for d in tree if d["owner"] != identity.user_id][:100]},
        )
    ids = [d["_id"] for d in tree]
    props_by_section: dict[int, list[int]] = {}
    values_by_section: dict[int, list[int]] = {}
    prop_ids = []
    for prop in ctx.store.properties.find({"section": {"$in": ids}, **LIVE}, {"section": 1, "values.id": 1}):
        prop_ids.append(prop["_id"])
        props_by_section.setdefault(prop["section"], []).append(prop["_id"])
        values_by_section.setdefault(prop["section"], []).extend(v["id"] for v in prop.get("values") or ())
    links_by_section: dict[int, list[int]] = {}
    for link in ctx.store.links.find({"section": {"$in": ids}}):
        links_by_section.setdefault(link["section"], []).append(link["datafile"])
    # Properties go first (tombstoned: hidden at once, removed by the relay), then the sections,
    # deepest first, so that an interrupted delete leaves a smaller but consistent tree.
    if prop_ids:
        ctx.store.properties.update_many({"_id": {"$in": prop_ids}, **LIVE}, tombstone_update())
    doomed = sorted(tree, key=lambda d: -d.get("depth", 0))
    event_ids = {}
    for section in doomed:
        deleted = events.SectionDeleted(
            section_id=section["_id"], owner=section["owner"], parent_section=section.get("parent_section"),
            property_ids=props_by_section.get(section["_id"], []), value_ids=values_by_section.get(section["_id"], []),
            datafile_ids=links_by_section.get(section["_id"], []),
        )
        envelope = event(deleted)
        event_ids[section["_id"]] = envelope["event_id"]
        ctx.store.sections.update_one({"_id": section["_id"], **LIVE}, tombstone_update(envelope))
    removed_links = ctx.store.links.delete_many({"section": {"$in": ids}}).deleted_count
    # One entry for the whole subtree, under the id of the top section's deleted event.
    history.sections_deleted(ctx.store, actor=identity.username, top=doc, sections=[d["_id"] for d in doomed],
                             properties=prop_ids, values=[v for vs in values_by_section.values() for v in vs],
                             entry_id=event_ids[doc["_id"]])
    return DeleteResult(sections=[d["_id"] for d in doomed], properties=len(prop_ids),
                        values=sum(len(v) for v in values_by_section.values()), datafile_links=removed_links)


# --- copy / move through POST /metadata/sections/ ------------------------------------------------

MODES = ("move", "copy")




@dataclass(frozen=True)
class CopyMoveRequest:
    source_id: int
    target_id: int | None
    mode: str
    with_properties: bool
    with_datafiles: bool
    recursive: bool


COPY_MOVE_PARAMS = ("source_section_id", "target_section_id", "mode", "with_properties", "with_datafiles", "recursive")


def parse_copy_move(params: Mapping[str, Any]) -> CopyMoveRequest | None:
    """The copy/move parameters (query string or body), or None when this is a plain create."""
    if params.get("source_section_id") in (None, ""):
        extra = [k for k in COPY_MOVE_PARAMS if params.get(k) not in (None, "")]
        if extra:
            raise BadRequest(f"{', '.join(extra)} go with `source_section_id` (copy or move).",
                             message_type="invalid_parameter")
        return None
    source_id = param_id(params["source_section_id"], "section", "source_section_id")
    try:
        target_id = parse_optional_section(params.get("target_section_id"))
    except InvalidId as exc:
        raise BadRequest(f"`target_section_id`: {exc}.", message_type="invalid_id") from None
    mode = str(params.get("mode") or "move").strip().lower()
    if mode not in MODES:
        raise BadRequest("`mode` must be move or copy.", message_type="invalid_parameter")
    return CopyMoveRequest(
        source_id=source_id,
        target_id=target_id,
        mode=mode,
        with_properties=flag(params.get("with_properties"), "with_properties", True),
        with_datafiles=flag(params.get("with_datafiles"), "with_datafiles", False),
        recursive=flag(params.get("recursive"), "recursive", False),
    )


def copy_or_move(*, ctx: MetadataContext, identity: Identity, request: CopyMoveRequest, body: Any) -> tuple[str, Any]:
    """("moved", section doc) or ("copied", CopyResult)."""
    changes = parse_section_body(body if body is not None else {}, creating=True, allow_empty=True)
    if changes.parent is not MISSING and changes.parent != request.target_id:
        raise BadRequest("`parent_section` in the body differs from `target_section_id`; give one of them.",
                         message_type="invalid_parameter")
    # A copy reads the source; a move is for the source's owner (and needs write on the target).
    source = resolve_section(ctx, identity, request.source_id, name="source_section_id",
                             need="owner" if request.mode == "move" else "read")
    if request.mode == "move":
        return "moved", move_section(ctx=ctx, identity=identity, doc=source, target_id=request.target_id, changes=changes)
    return "copied", copy_section(
        ctx=ctx, identity=identity, source=source, target_id=request.target_id, changes=changes,
        with_properties=request.with_properties, with_datafiles=request.with_datafiles, recursive=request.recursive,
    )


# --- reading --------------------------------------------------------------------------------------

def readable_datafiles(ctx: MetadataContext, identity: Identity, datafile_ids: Iterable[int], *,
                       strict: bool) -> set[int]:
    """Those of `datafile_ids` that `identity` may read, asked of the files service in one call.

    When it cannot answer: none of them (a section stays readable and shows only what was
    checked), or, if `strict` (a copy deciding what to link), 503."""
    wanted = set(datafile_ids)
    if not wanted:
        return set()
    try:
        return ctx.files.readable_datafiles(identity, wanted)
    except FilesUnavailable as exc:
        if strict:
            raise ServiceUnavailable(f"Cannot check which datafiles you may read: {exc}.",
                                     headers={"Retry-After": "5"}) from None
        log.warning("leaving the datafiles out of a section: %s", exc)
        return set()


def section_contents(
    ctx: MetadataContext, identity: Identity, section_id: int, *, readable: set[int] | None = None
) -> tuple[list[int], list[int], list[int]]:
    """(subsections, properties, linked datafiles) of a section that `identity` may read, each in order.

    `readable`: datafiles already checked in this request (a copy's), else the files service is asked."""
    subsections = [d["_id"] for d in ctx.store.sections.find(
        {"parent_section": section_id, **LIVE, **read_filter(identity)}, {"_id": 1}).sort([("tree_position", 1), ("_id", 1)])]
    properties = [d["_id"] for d in ctx.store.properties.find(
        {"section": section_id, **LIVE, **read_filter(identity)}, {"_id": 1}).sort([("tree_position", 1), ("_id", 1)])]
    linked = sorted({d["datafile"] for d in ctx.store.links.find({"section": section_id}, {"datafile": 1})})
    if readable is None:
        readable = readable_datafiles(ctx, identity, linked, strict=False)
    return subsections, properties, [i for i in linked if i in readable]
