"""odML documents in and out, through the `odml` library (python-odml, format version 1.1).

Export builds an `odml.Document` from a section subtree and writes it with
`odml.tools.ODMLWriter` (XML, JSON or YAML). Import hands the uploaded bytes to python-odml's
readers in a sandboxed child process (odml_parse.py: no secret, no database, no file but the
document and a scratch folder, limits on time and memory), checks the drafts it answers with the
service's own rules, and turns them into new sections and properties, all validated before
anything is written.

Field mapping (section / property of this service <-> odML):
- section `name`, `type`, `reference`, `repository`, `link` <-> the same; `description` <-> `definition`;
  a section without `type` is exported as odML's "n.s."; `mapping` has no odML 1.1 equivalent and is
  not exported.
- property `name`, `dtype`, `unit`, `uncertainty`, `reference`, `definition`, `dependency`,
  `dependency_value`, `value_origin` and the values <-> the same; `description` is exported as the
  `definition` when the property has none; `type` and `mapping` are not exported.

Safety: python-odml fetches terminologies over the network when a `repository` or `include` is
set; this service never lets it (`no_network`, in the export too), drops `include` on import,
refuses XML with a DOCTYPE (no entity expansion) and YAML with aliases (no "billion laughs").
"""
from __future__ import annotations

import contextlib
import json
import tempfile
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Iterable, Mapping

import odml
from odml.tools import ODMLWriter

from services.metadata import history
from services.metadata.context import MetadataContext
from services.metadata.dtypes import DtypeError, normalise_dtype, normalise_values
from services.metadata.fields import parse_property_body, parse_section_body
from services.metadata.odml_parse import DRAFTS_NAME, Draft, InvalidDocument, no_network, quiet
from services.metadata.odml_parse import ENTRY as PARSE_ENTRY
from services.metadata.properties import new_property_doc, property_created_event, value_entry
from services.metadata.search import section_search_text
from services.metadata.sections import (
    connected, created_event, free_name, inherited_acl, load_section, new_section_doc, next_position, now,
    TREE_ORDER, resolve_section, write_tree,
)
from services.metadata.store import HIDDEN, LIVE
from shared.access import read_filter
from shared.errors import ApiError, BadRequest, ServiceUnavailable
from shared.events import outbox_fields
from shared.identity import Identity
from shared.sandbox import SandboxFailed, SandboxUnavailable, run_sandboxed
from shared.sandbox.outputs import UnsafeOutput, open_output

FORMATS = {
    "xml": ("XML", "application/xml", "odml"),
    "json": ("JSON", "application/json", "json"),
    "yaml": ("YAML", "application/x-yaml", "yaml"),
}
_ALIASES = {"odml": "xml", "yml": "yaml"}
# python-odml keeps global state (yaml representers, terminology caches) and prints its warnings:
# one document at a time, with its chatter captured.
_LOCK = threading.Lock()
no_network()
IMPORT_WAIT_SECONDS = 10.0


@contextlib.contextmanager
def _quiet():
    with _LOCK, quiet():
        yield


def parse_format(raw: str | None, *, default: str | None = "xml") -> str | None:
    if raw is None or not raw.strip():
        return default
    value = _ALIASES.get(raw.strip().lower(), raw.strip().lower())
    if value not in FORMATS:
        raise BadRequest(f"`format` must be one of {', '.join(FORMATS)}, not {raw!r}.", message_type="invalid_parameter")
    return value


# --- export -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Exported:
    text: str
    media_type: str
    filename: str
    sections: int


def _text(value: Any) -> str | None:
    return value if value not in (None, "") else None


def _unique(name: str, taken: set[str], section_id: int) -> str:
    """odML wants unique sibling names; this service keeps them unique, but a race could slip one in."""
    if name not in taken:
        taken.add(name)
        return name
    candidate = f"{name} (section_{section_id})"
    taken.add(candidate)
    return candidate


def _odml_section(doc: Mapping[str, Any], name: str) -> odml.Section:
    return odml.Section(
        name=name,
        type=_text(doc.get("type")) or "n.s.",
        definition=_text(doc.get("description")),
        reference=_text(doc.get("reference")),
        repository=_text(doc.get("repository")),
        link=_text(doc.get("link")),
    )


def _odml_property(prop: Mapping[str, Any]) -> odml.Property:
    return odml.Property(
        name=prop["name"],
        values=[entry["value"] for entry in prop.get("values") or ()],
        dtype=prop.get("dtype") or "string",
        unit=_text(prop.get("unit")),
        uncertainty=prop.get("uncertainty"),
        reference=_text(prop.get("reference")),
        definition=_text(prop.get("definition")) or _text(prop.get("description")),
        dependency=_text(prop.get("dependency")),
        dependency_value=_text(prop.get("dependency_value")),
        value_origin=_text(prop.get("value_origin")),
    )


def build_document(
    sections: list[Mapping[str, Any]], properties: Iterable[Mapping[str, Any]], *, author: str | None
) -> odml.Document:
    """An odml.Document of `sections` (parents before children; those without a parent in the list
    are top-level) with their `properties`."""
    document = odml.Document(author=author, date=date.today())
    by_section: dict[int, list[Mapping[str, Any]]] = {}
    for prop in properties:
        by_section.setdefault(prop["section"], []).append(prop)
    built: dict[int, odml.Section] = {}
    names: dict[Any, set[str]] = {}
    for doc in sections:
        parent_key = doc.get("parent_section") if doc.get("parent_section") in built else "root"
        section = _odml_section(doc, _unique(doc["name"], names.setdefault(parent_key, set()), doc["_id"]))
        (built[parent_key] if parent_key != "root" else document).append(section)
        built[doc["_id"]] = section
        prop_names: set[str] = set()
        for prop in by_section.get(doc["_id"], ()):
            odml_prop = _odml_property({**prop, "name": _unique(prop["name"], prop_names, prop["_id"])})
            section.append(odml_prop)
    return document


def export_tree(*, ctx: MetadataContext, identity: Identity, section_id: int | None, fmt: str) -> Exported:
    """A section with the part of its subtree you may read, or (no section) all your root sections
    (none for an anonymous caller). Only what the caller may read is exported (docs/permissions.md)."""
    visible = {**LIVE, **read_filter(identity)}
    order = TREE_ORDER
    if section_id is not None:
        top = load_section(ctx, identity, section_id)
        tops = [top]
        below = list(ctx.store.sections.find({"ancestors": section_id, **visible}, HIDDEN).sort(order))
        filename = f"section_{section_id}"
    else:
        tops = list(ctx.store.sections.find({"parent_section": None, "owner": identity.user_id, **LIVE}, HIDDEN)
                    .sort([("tree_position", 1), ("_id", 1)])) if identity.is_authenticated else []
        top_ids = [t["_id"] for t in tops]
        below = list(ctx.store.sections.find({"ancestors": {"$in": top_ids}, **visible}, HIDDEN).sort(order)) if tops else []
        filename = "metadata"
    tree: list[dict[str, Any]] = []
    for top in tops:
        tree += connected(top, (d for d in below if top["_id"] in d["ancestors"]))
    if len(tree) > ctx.limits.max_tree:
        raise BadRequest(f"At most {ctx.limits.max_tree} sections can be exported at once; this has {len(tree)}. "
                         "Export a smaller subtree.", message_type="too_many_sections")
    ids = [d["_id"] for d in tree]
    props = list(ctx.store.properties.find({"section": {"$in": ids}, **visible}, HIDDEN)
                 .sort([("section", 1), ("tree_position", 1), ("_id", 1)])) if ids else []
    parser, media_type, extension = FORMATS[fmt]
    try:
        with _quiet():
            document = build_document(tree, props, author=identity.username)
            text = ODMLWriter(parser).to_string(document)
    except RecursionError:
        raise BadRequest("The sections are nested too deeply for an odML document; export a subtree.",
                         message_type="too_deep") from None
    return Exported(text=text, media_type=media_type, filename=f"{filename}.{extension}", sections=len(tree))


# --- import -------------------------------------------------------------------------------------

def detect_format(data: bytes, *, given: str | None, filename: str | None, content_type: str | None) -> str:
    if given:
        return given
    if filename and "." in filename:
        extension = filename.rsplit(".", 1)[1].lower()
        extension = _ALIASES.get(extension, extension)
        if extension in FORMATS:
            return extension
    media = (content_type or "").split(";")[0].strip().lower()
    if media.endswith("xml"):
        return "xml"
    if media.endswith("json"):
        return "json"
    if "yaml" in media:
        return "yaml"
    head = data.lstrip()[:1]
    return {b"<": "xml", b"{": "json"}.get(head, "yaml")


def _invalid_answer(what: str) -> InvalidDocument:
    return InvalidDocument(f"The document could not be read ({what}).")


def _checked_property(raw: Any, max_values: int) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("fields"), dict) or not isinstance(raw.get("values"), list):
        raise _invalid_answer("property")
    try:
        dtype = normalise_dtype(raw.get("dtype"))
        values = normalise_values(raw["values"], dtype)
    except DtypeError as exc:
        raise _invalid_answer(f"property {str(raw['fields'].get('name'))[:100]!r}: {exc}") from None
    if len(values) > max_values:
        raise InvalidDocument(f"Property {str(raw['fields'].get('name'))[:100]!r} has more than {max_values} values.")
    fields = parse_property_body({**raw["fields"], "section_id": 1}, creating=True).fields
    return {"fields": fields, "dtype": dtype, "values": values}


def checked_drafts(raw: Any, *, max_tree: int, max_values: int) -> list[Draft]:
    """The sandbox's drafts, checked again with the service's own rules (they came from hostile bytes)."""
    if not isinstance(raw, list):
        raise _invalid_answer("drafts")
    if len(raw) > max_tree:
        raise BadRequest(f"At most {max_tree} sections can be imported at once.", message_type="too_many_sections")
    drafts = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("fields"), dict) \
                or not isinstance(item.get("properties"), list):
            raise _invalid_answer("section")
        parent = item.get("parent")
        if parent is not None and not (isinstance(parent, int) and not isinstance(parent, bool) and 0 <= parent < index):
            raise _invalid_answer("parent")
        fields = parse_section_body(item["fields"], creating=True).fields
        drafts.append(Draft(fields, parent, [_checked_property(p, max_values) for p in item["properties"]]))
    return drafts


def parse_in_sandbox(ctx: MetadataContext, data: bytes, fmt: str) -> list[Draft]:
    """The document's drafts, read by python-odml in a sandboxed child (odml_parse.py); at most
    `import_slots` at once in this process, 503 when they stay busy."""
    if not ctx.import_slots.acquire(timeout=IMPORT_WAIT_SECONDS):
        raise ServiceUnavailable("Too many odML imports are being read right now; try again shortly.",
                                 headers={"Retry-After": "5"})
    try:
        return _parse_in_sandbox(ctx, data, fmt)
    finally:
        ctx.import_slots.release()


def _parse_in_sandbox(ctx: MetadataContext, data: bytes, fmt: str) -> list[Draft]:
    if ctx.sandbox_dir is not None:
        ctx.sandbox_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gnode-odml-", dir=ctx.sandbox_dir) as folder:
        document, scratch = Path(folder) / "document", Path(folder) / "scratch"
        document.write_bytes(data)
        params = {"format": fmt, "max_tree": ctx.limits.max_tree, "max_values": ctx.limits.max_values}
        try:
            answer = run_sandboxed(PARSE_ENTRY, input_path=document, scratch=scratch, params=params, settings=ctx.sandbox)
        except SandboxFailed as exc:
            raise InvalidDocument(f"The {fmt.upper()} document could not be read within the limits: {exc.message}.",
                                  details={"limit": exc.kind}) from None
        except SandboxUnavailable as exc:
            raise ServiceUnavailable(f"odML import cannot run safely on this server: {exc}.") from None
        if not isinstance(answer, dict):
            raise _invalid_answer("answer")
        if "error" in answer:
            status = answer.get("status") if answer.get("status") in (400, 413) else 400
            raise ApiError(str(answer["error"])[:2000], message_type=str(answer.get("message_type") or "invalid_document"),
                           http_status=status, details=answer.get("details") if isinstance(answer.get("details"), dict) else None)
        if answer.get("drafts") != DRAFTS_NAME:
            raise _invalid_answer("drafts file")
        try:
            with open_output(scratch, DRAFTS_NAME, max_bytes=max(64 * 1024**2, 8 * ctx.limits.max_import_bytes)) as f:
                raw = json.loads(f.read())
        except UnsafeOutput as exc:
            raise _invalid_answer(f"drafts file: {exc}") from None
        except ValueError:
            raise _invalid_answer("drafts are not JSON") from None
    return checked_drafts(raw, max_tree=ctx.limits.max_tree, max_values=ctx.limits.max_values)


@dataclass
class ImportResult:
    top: list[dict[str, Any]]
    sections: list[int]
    properties: int
    values: int


def import_document(
    *,
    ctx: MetadataContext,
    identity: Identity,
    data: bytes,
    fmt: str | None,
    filename: str | None,
    content_type: str | None,
    target_id: int | None,
    source: str = "import",
    origin: Mapping[str, Any] | None = None,
    acl: Mapping[str, Any] | None = None,
) -> ImportResult:
    """Create the document's sections (with properties and values) under `target_id` (None: root).

    The whole import is one history entry (`origin` is its source, e.g. the odML import of a datafile).

    Top-level sections whose name is taken among the target's children get " (2)", " (3)", ...
    The whole document is read and checked before anything is written.
    """
    if len(data) > ctx.limits.max_import_bytes:
        raise BadRequest(f"Documents are limited to {ctx.limits.max_import_bytes} bytes.", message_type="too_large")
    fmt = detect_format(data, given=fmt, filename=filename, content_type=content_type)
    target = resolve_section(ctx, identity, target_id, name="target_section_id")
    if not data.strip():
        raise InvalidDocument("The document is empty.")
    drafts = parse_in_sandbox(ctx, data, fmt)
    if not drafts:
        raise InvalidDocument("The document has no sections to import.")
    target_key = target["_id"] if target else None
    acl = dict(acl) if acl is not None else inherited_acl(target, identity)  # a conversion's: its datafile's
    when = now()
    section_ids = ctx.store.next_ids("section", len(drafts))
    prop_count = sum(len(d.properties) for d in drafts)
    property_ids = iter(ctx.store.next_ids("property", prop_count))
    value_ids = iter(ctx.store.next_ids("value", sum(len(p["values"]) for d in drafts for p in d.properties)))
    position = next_position(ctx, target_key, identity.user_id)
    used_names: set[str] = set()
    built: list[dict[str, Any]] = []
    section_docs, prop_docs = [], []
    event_ids: list[str] = []  # the first section's is the id of the import's history entry
    for index, (draft, section_id) in enumerate(zip(drafts, section_ids)):
        fields = dict(draft.fields)
        if draft.parent is None:
            parent = target
            name = free_name(ctx, target_key, identity.user_id, fields["name"])
            while name in used_names:  # two top-level sections of one document cannot clash, but be sure
                name = f"{name} (2)"
            used_names.add(name)
            fields["name"] = name
            tree_position, position = position, position + 1
        else:
            parent = built[draft.parent]
            tree_position = sum(1 for d in drafts[:index] if d.parent == draft.parent)
        doc = new_section_doc(section_id=section_id, fields=fields, parent=parent, acl=acl,
                              tree_position=tree_position, when=when)
        built.append(doc)
        props = []
        for prop_position, prop in enumerate(draft.properties):
            entries = [value_entry(next(value_ids), value, when) for value in prop["values"]]
            prop_doc = new_property_doc(ctx, property_id=next(property_ids), section=doc, fields=prop["fields"],
                                        dtype=prop["dtype"], entries=entries, tree_position=prop_position,
                                        created_by=identity.username, when=when)
            props.append(prop_doc)
            prop_docs.append({**prop_doc, **outbox_fields(property_created_event(prop_doc))})
        doc["search_text"] = section_search_text(doc, props, ctx.limits.search_text_chars)
        created = created_event(doc, source=source)
        event_ids.append(created["event_id"])
        section_docs.append({**doc, **outbox_fields(created)})
    write_tree(ctx, section_docs, prop_docs, [])
    history.document_imported(ctx.store, actor=identity.username, target_id=target_key, sections=section_ids,
                              props=prop_docs, source=origin, entry_id=event_ids[0])
    top = [d for d, draft in zip(built, drafts) if draft.parent is None]
    return ImportResult(top=top, sections=section_ids, properties=len(prop_docs),
                        values=sum(len(p["values"]) for p in prop_docs))
