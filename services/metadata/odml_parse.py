"""Reading an uploaded odML document, as it runs in the sandbox (DESIGN.md section 8).

python-odml parses the bytes (XML through lxml without entities or network, JSON, YAML without
aliases) into an odml.Document, which is walked into plain drafts of sections, properties and
values, checked with the service's own field and dtype rules. The drafts go to
`<scratch>/drafts.json`; the service (odml_io.py) checks them again and writes them. Nothing here
touches the database: the sandbox has none to touch.

    {"drafts": "drafts.json", "sections": n} | {"error": message, "message_type": ..., "status": 400}
"""
from __future__ import annotations

import contextlib
import io
import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import odml
import odml.terminology
import yaml
from lxml import etree
from odml.section import BaseSection
from odml.tools import DictReader
from odml.tools.parser_utils import ParserException
from odml.tools.xmlparser import XMLReader

from services.metadata.dtypes import DtypeError, from_odml, infer_dtype, normalise_dtype
from services.metadata.fields import parse_property_body, parse_section_body
from shared.errors import ApiError, BadRequest

ENTRY = "services.metadata.odml_parse:main"
DRAFTS_NAME = "drafts.json"
MAX_DEPTH = 200


class InvalidDocument(BadRequest):
    message_type = "invalid_document"


def no_network() -> None:
    """python-odml loads terminologies from `repository`/`include` URLs in the background: never here."""
    odml.terminology.load = lambda url: None  # type: ignore[assignment]
    odml.terminology.deferred_load = lambda url: None  # type: ignore[assignment]
    odml.terminology.cache_load = lambda *args, **kwargs: None  # type: ignore[assignment]


no_network()


@contextlib.contextmanager
def quiet():
    """python-odml prints its warnings: keep them out of the output."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without aliases: a few hundred bytes of nested aliases expand to billions of nodes
    once walked (the "billion laughs"); odML documents never need them."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise InvalidDocument(f"YAML aliases (*name) are not accepted in odML documents (line {mark.line + 1}).")
        return super().compose_node(parent, index)


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
        parsed = json.loads(text) if fmt == "json" else yaml.load(text, Loader=_NoAliasLoader)
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
        with quiet():
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
class Draft:
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


def _drafts(document: odml.Document, limit: int, max_values: int) -> list[Draft]:
    drafts: list[Draft] = []

    def walk(section: odml.Section, parent: int | None, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            raise InvalidDocument(f"Sections are nested more than {MAX_DEPTH} deep.")
        if len(drafts) >= limit:
            raise BadRequest(f"At most {limit} sections can be imported at once.", message_type="too_many_sections")
        draft = Draft(_section_fields(section), parent)
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


def main(*, input_path: Path, scratch: Path, params: dict[str, Any]) -> dict[str, Any]:
    """The sandbox's entry: read the document at `input_path` in `params["format"]`."""
    try:
        document = read_document(input_path.read_bytes(), str(params["format"]))
        drafts = _drafts(document, int(params["max_tree"]), int(params["max_values"]))
    except ApiError as exc:
        return {"error": exc.message, "message_type": exc.message_type, "status": exc.http_status,
                "details": exc.details}
    with open(scratch / DRAFTS_NAME, "w", encoding="utf-8") as f:
        json.dump([asdict(d) for d in drafts], f, default=str)
    return {"drafts": DRAFTS_NAME, "sections": len(drafts)}
