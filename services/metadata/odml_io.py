"""odML documents in and out, through the `odml` library (python-odml, format version 1.1).

Export builds an `odml.Document` from a section subtree and writes it with
`odml.tools.ODMLWriter` (XML, JSON or YAML). Import reads a document with python-odml's readers
(`XMLReader` on a tree parsed without entities or network, `DictReader` for JSON and YAML) and
turns it into new sections and properties, all validated before anything is written.

Field mapping (section / property of this service <-> odML):
- section `name`, `type`, `reference`, `repository`, `link` <-> the same; `description` <-> `definition`;
  a section without `type` is exported as odML's "n.s."; `mapping` has no odML 1.1 equivalent and is
  not exported.
- property `name`, `dtype`, `unit`, `uncertainty`, `reference`, `definition`, `dependency`,
  `dependency_value`, `value_origin` and the values <-> the same; `description` is exported as the
  `definition` when the property has none; `type` and `mapping` are not exported.

Safety: python-odml fetches terminologies over the network when a `repository` or `include` is
set; this service never lets it (`_no_network`), drops `include` on import, and refuses XML with a
DOCTYPE (no entity expansion).
"""
from __future__ import annotations

import contextlib
import io
import json
import threading
import warnings
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Iterable, Mapping

import odml
import odml.terminology
import yaml
from lxml import etree
from odml.tools import DictReader, ODMLWriter
from odml.tools.parser_utils import ParserException
from odml.section import BaseSection
from odml.tools.xmlparser import XMLReader

from services.metadata import history
from services.metadata.context import MetadataContext
from services.metadata.dtypes import DtypeError, from_odml, infer_dtype, normalise_dtype
from services.metadata.fields import parse_property_body, parse_section_body
from services.metadata.properties import new_property_doc, property_created_event, value_entry
from services.metadata.search import section_search_text
from services.metadata.sections import (
    connected, created_event, free_name, inherited_acl, load_section, new_section_doc, next_position, now,
    TREE_ORDER, resolve_section, write_tree,
)
from services.metadata.store import HIDDEN, LIVE
from shared.access import read_filter
from shared.errors import ApiError, BadRequest
from shared.events import outbox_fields
from shared.identity import Identity

FORMATS = {
    "xml": ("XML", "application/xml", "odml"),
    "json": ("JSON", "application/json", "json"),
    "yaml": ("YAML", "application/x-yaml", "yaml"),
}
_ALIASES = {"odml": "xml", "yml": "yaml"}
MAX_DEPTH = 200
# python-odml keeps global state (yaml representers, terminology caches) and prints its warnings:
# one document at a time, with its chatter captured.
_LOCK = threading.Lock()


def _no_network() -> None:
    """python-odml loads terminologies from `repository`/`include` URLs in the background: never here."""
    odml.terminology.load = lambda url: None  # type: ignore[assignment]
    odml.terminology.deferred_load = lambda url: None  # type: ignore[assignment]
    odml.terminology.cache_load = lambda *args, **kwargs: None  # type: ignore[assignment]


_no_network()


@contextlib.contextmanager
def _quiet():
    with _LOCK, warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


class InvalidDocument(BadRequest):
    message_type = "invalid_document"


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


def _strip_includes(node: Any) -> Any:
    """`include` makes python-odml fetch a URL and merge it: dropped from what we import."""
    if isinstance(node, dict):
        return {k: _strip_includes(v) for k, v in node.items() if k != "include"}
    if isinstance(node, list):
        return [_strip_includes(v) for v in node]
    return node


def _check_dtypes(found: Iterable[tuple[Any, Any]]) -> None:
    """python-odml replaces a dtype it does not know by one inferred from the values: refuse instead."""
    for name, dtype in found:
        if dtype in (None, ""):
            continue
        try:
            normalise_dtype(dtype)
        except DtypeError as exc:
            raise InvalidDocument(f"Property {name!r}: {exc}.") from None


def _dict_dtypes(node: Any) -> Iterable[tuple[Any, Any]]:
    if isinstance(node, dict):
        for prop in node.get("properties") or ():
            if isinstance(prop, dict):
                yield prop.get("name"), prop.get("type")
        for child in node.get("sections") or ():
            yield from _dict_dtypes(child)


def _read_xml(data: bytes) -> odml.Document:
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        raise InvalidDocument("odML XML must not have a DOCTYPE or entities.")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise InvalidDocument(f"The document is not well-formed XML: {exc}.") from None
    for include in list(root.iter("include")):
        include.getparent().remove(include)
    _check_dtypes((prop.findtext("name"), prop.findtext("type")) for prop in root.iter("property"))
    reader = XMLReader(ignore_errors=False, show_warnings=False)
    reader._handle_version(root)
    return reader.parse_element(root)


def _read_dict(data: bytes, fmt: str) -> odml.Document:
    try:
        text = data.decode("utf-8-sig")
        parsed = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise InvalidDocument(f"The document is not valid {fmt.upper()}: {exc}.") from None
    if not isinstance(parsed, dict):
        raise InvalidDocument(f"The {fmt.upper()} document must be an object with `Document` and `odml-version`.")
    document = parsed.get("Document")
    for section in (document.get("sections") or ()) if isinstance(document, dict) else ():
        _check_dtypes(_dict_dtypes(section))
    return DictReader(show_warnings=False, ignore_errors=False).to_odml(_strip_includes(parsed))


def read_document(data: bytes, fmt: str) -> odml.Document:
    """An odml.Document from bytes; InvalidDocument (400) with python-odml's reason otherwise."""
    if not data.strip():
        raise InvalidDocument("The document is empty.")
    try:
        with _quiet():
            document = _read_xml(data) if fmt == "xml" else _read_dict(data, fmt)
    except ApiError:
        raise
    except RecursionError:
        raise InvalidDocument(f"The {fmt.upper()} document is nested too deeply.") from None
    except (ParserException, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidDocument(f"The {fmt.upper()} document is not a valid odML 1.1 document: {exc}".strip()) from None
    if document is None:
        raise InvalidDocument(f"The {fmt.upper()} document could not be read as odML.")
    return document


@dataclass
class _Draft:
    fields: dict[str, Any]
    parent: int | None  # index of the parent draft, None for a top-level one
    properties: list[dict[str, Any]] = field(default_factory=list)


def _path(section: BaseSection) -> str:
    parts = []
    node = section
    while isinstance(node, BaseSection):
        parts.append(node.name)
        node = node.parent
    return "/" + "/".join(reversed(parts))


def _section_fields(section: odml.Section) -> dict[str, Any]:
    body = {"name": section.name, "type": section.type, "description": section.definition,
            "reference": section.reference, "repository": section.repository, "link": section.link}
    try:
        return parse_section_body(body, creating=True).fields
    except BadRequest as exc:
        raise InvalidDocument(f"Section {_path(section)}: {exc.message}", details=exc.details) from None


def _property_fields(prop: odml.Property, where: str) -> tuple[dict[str, Any], str, list[Any]]:
    raw_values = list(prop.values)
    try:
        dtype = normalise_dtype(prop.dtype) if prop.dtype else (infer_dtype(raw_values[0]) if raw_values else "string")
        values = [from_odml(v, dtype) for v in raw_values]
    except DtypeError as exc:
        raise InvalidDocument(f"Property {where}:{prop.name}: {exc}.") from None
    body = {"name": prop.name, "section_id": 1, "unit": prop.unit, "uncertainty": prop.uncertainty,
            "reference": prop.reference, "definition": prop.definition, "dependency": prop.dependency,
            "dependency_value": prop.dependency_value, "value_origin": prop.value_origin}
    try:
        fields = parse_property_body({k: v for k, v in body.items() if v is not None}, creating=True).fields
    except BadRequest as exc:
        raise InvalidDocument(f"Property {where}:{prop.name}: {exc.message}", details=exc.details) from None
    return fields, dtype, values


def _drafts(document: odml.Document, limit: int, max_values: int) -> list[_Draft]:
    drafts: list[_Draft] = []

    def walk(section: odml.Section, parent: int | None, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            raise InvalidDocument(f"Sections are nested more than {MAX_DEPTH} deep.")
        if len(drafts) >= limit:
            raise BadRequest(f"At most {limit} sections can be imported at once.", message_type="too_many_sections")
        draft = _Draft(_section_fields(section), parent)
        where = _path(section)
        for prop in section.properties:
            fields, dtype, values = _property_fields(prop, where)
            if len(values) > max_values:
                raise InvalidDocument(f"Property {where}:{prop.name} has more than {max_values} values.")
            draft.properties.append({"fields": fields, "dtype": dtype, "values": values})
        drafts.append(draft)
        index = len(drafts) - 1
        for child in section.sections:
            walk(child, index, depth + 1)

    for top in document.sections:
        walk(top, None)
    return drafts


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
    document = read_document(data, fmt)
    drafts = _drafts(document, ctx.limits.max_tree, ctx.limits.max_values)
    if not drafts:
        raise InvalidDocument("The document has no sections to import.")
    target_key = target["_id"] if target else None
    acl = inherited_acl(target, identity)
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
