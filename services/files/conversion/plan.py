"""The plan: what a sandboxed parse hands back to the worker, as files in its scratch folder.

The parser (in the sandbox) never talks to another service; it writes what should be created:

- `plan.jsonl`: one operation a line, parents before children:
  - `{"op": "create", "ref": 3, "type": "analogsignal", "body": {...}, "links": {"segment": 1},
    "arrays": {"signal": "arrays/3-signal.npy"}}`
  - `{"op": "create_many", "type": "event", "refs": [7, 8], "bodies": [...], "links": [{...}, {...}]}`
  - `{"op": "member", "path": "a/b.csv", "file": "members/0", "size": 12}` (archives)
- `arrays/<ref>-<field>.npy`: numeric arrays, written with `allow_pickle=False`;
- `members/<n>`: the bytes of archive members.

`links` name the parent objects by their `ref`; the worker replaces them with the neo ids it got
when it created those parents. Bodies never carry refs in their values, so no text of the file can
pose as one.

The worker reads the plan as untrusted too (the parser ran on hostile bytes): every line is
bounded and checked, paths must match the patterns above, every file is opened without following a
link and only if it is a regular file (shared/sandbox/outputs.py), arrays are memory-mapped from
their .npy header (never unpickled) and must be numeric, and members are hashed by the worker.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Mapping

import numpy as np
import orjson

from services.files.conversion.errors import ConversionError
from shared.sandbox.outputs import UnsafeOutput, open_folder, open_output, regular_file_in

PLAN_NAME = "plan.jsonl"
ARRAYS = "arrays"
MEMBERS = "members"
BATCH = 1000  # bodies per create_many line
MAX_LINE_BYTES = 64 * 1024**2
NUMERIC_KINDS = "biuf"
_ARRAY_NAME = re.compile(r"^arrays/\d{1,12}-[a-z_]{1,40}\.npy$")
_MEMBER_NAME = re.compile(r"^members/\d{1,12}$")
_TYPE_NAME = re.compile(r"^[a-z]{1,40}$")
_FIELD_NAME = re.compile(r"^[a-z_]{1,40}$")


@dataclass(frozen=True)
class Ref:
    """A NEO object of the plan, before it has an id."""

    index: int


def _split_links(body: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
    plain, links = {}, {}
    for key, value in body.items():
        if isinstance(value, Ref):
            links[key] = value.index
        else:
            plain[key] = value
    return plain, links


def _numeric(field: str, array: Any) -> np.ndarray:
    values = np.ascontiguousarray(np.asarray(array))
    if values.dtype.kind not in NUMERIC_KINDS:
        raise ConversionError(f"the {field} array holds {values.dtype} values, not numbers")
    return values


class PlanWriter:
    """The parser's side: `create` / `create_many` as a conversion job offers them, written down."""

    def __init__(self, folder: Path, *, title: str):
        self.folder, self.title = folder, title
        (folder / ARRAYS).mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = open(folder / PLAN_NAME, "wb")
        self.objects = 0
        self.members = 0

    def close(self) -> None:
        self._file.close()

    def _line(self, op: dict[str, Any]) -> None:
        self._file.write(orjson.dumps(op, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS) + b"\n")

    def _new_ref(self) -> Ref:
        ref = Ref(self.objects)
        self.objects += 1
        return ref

    def create(self, type_name: str, body: Mapping[str, Any], arrays: Mapping[str, Any] | None = None) -> Ref:
        ref = self._new_ref()
        plain, links = _split_links(body)
        names = {}
        for field, array in (arrays or {}).items():
            name = f"{ARRAYS}/{ref.index}-{field}.npy"
            np.save(self.folder / name, _numeric(field, array), allow_pickle=False)
            names[field] = name
        self._line({"op": "create", "ref": ref.index, "type": type_name, "body": plain, "links": links, "arrays": names})
        return ref

    def create_many(self, type_name: str, bodies: list[Mapping[str, Any]]) -> list[Ref]:
        refs: list[Ref] = []
        for start in range(0, len(bodies), BATCH):
            batch = [_split_links(body) for body in bodies[start:start + BATCH]]
            batch_refs = [self._new_ref() for _ in batch]
            self._line({"op": "create_many", "type": type_name, "refs": [r.index for r in batch_refs],
                        "bodies": [plain for plain, _ in batch], "links": [links for _, links in batch]})
            refs += batch_refs
        return refs

    def member(self, path: str, source: BinaryIO, *, limit: int) -> None:
        """An archive member's bytes, copied up to `limit` (its declared size)."""
        name = f"{MEMBERS}/{self.members}"
        self.members += 1
        (self.folder / MEMBERS).mkdir(exist_ok=True)
        size = 0
        with open(self.folder / name, "wb") as target:
            while True:
                data = source.read(1024 * 1024)
                if not data:
                    break
                size += len(data)
                if size > limit:
                    raise ConversionError(f"member {path!r} holds more than it declares")
                target.write(data)
        self._line({"op": "member", "path": path, "file": name, "size": size})

    # A job reports progress; the parse has nobody to report to (the worker shows "parsing").
    def expect(self, total: int | None, stage: str) -> None:
        pass

    def advance(self, count: int = 1) -> None:
        pass


# --- the worker's side ------------------------------------------------------------------------------

def _bad(reason: str) -> ConversionError:
    return ConversionError(f"the parser's output is not valid ({reason})")


def _check_links(links: Any, known: int) -> dict[str, int]:
    if not isinstance(links, dict):
        raise _bad("links")
    for key, ref in links.items():
        if not _FIELD_NAME.match(str(key)) or not isinstance(ref, int) or isinstance(ref, bool) or not 0 <= ref < known:
            raise _bad(f"link {key!r}")
    return links


def _check_op(op: Any, known: int) -> dict[str, Any]:
    if not isinstance(op, dict):
        raise _bad("a line is not an object")
    kind = op.get("op")
    if kind == "create":
        if op.get("ref") != known or not _TYPE_NAME.match(str(op.get("type"))) or not isinstance(op.get("body"), dict):
            raise _bad("create")
        _check_links(op.get("links"), known)
        arrays = op.get("arrays")
        if not isinstance(arrays, dict) or not all(_FIELD_NAME.match(str(k)) and isinstance(v, str) and _ARRAY_NAME.match(v)
                                                   for k, v in arrays.items()):
            raise _bad("arrays")
    elif kind == "create_many":
        refs, bodies, links = op.get("refs"), op.get("bodies"), op.get("links")
        if not _TYPE_NAME.match(str(op.get("type"))) or not isinstance(refs, list) or not isinstance(bodies, list) \
                or not isinstance(links, list) or not len(refs) == len(bodies) == len(links) \
                or refs != list(range(known, known + len(refs))) or not all(isinstance(b, dict) for b in bodies):
            raise _bad("create_many")
        for item in links:
            _check_links(item, known)
    elif kind == "member":
        size = op.get("size")
        if not isinstance(op.get("path"), str) or not _MEMBER_NAME.match(str(op.get("file"))) \
                or not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _bad("member")
    else:
        raise _bad(f"unknown operation {str(kind)[:40]!r}")
    return op


def read_plan(folder: Path) -> Iterator[dict[str, Any]]:
    """The plan's operations, each checked; ConversionError on anything malformed."""
    known = 0
    try:
        plan = open_output(folder, PLAN_NAME)
    except UnsafeOutput as exc:
        raise _bad(str(exc)) from None
    with plan:
        while True:
            line = plan.readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            if len(line) > MAX_LINE_BYTES:
                raise _bad("a line is too long")
            try:
                op = _check_op(orjson.loads(line), known)
            except orjson.JSONDecodeError:
                raise _bad("a line is not JSON") from None
            if op["op"] == "create":
                known += 1
            elif op["op"] == "create_many":
                known += len(op["refs"])
            yield op


def _npy_header(f: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise ValueError(f"npy version {version}")


def load_array(folder: Path, name: str) -> np.ndarray:
    """An array the parser wrote: memory-mapped from its .npy header, never unpickled, numeric only."""
    if not _ARRAY_NAME.match(name):
        raise _bad("array name")
    try:
        with open_output(folder, name) as f:
            shape, fortran, dtype = _npy_header(f)
            if dtype.hasobject or dtype.kind not in NUMERIC_KINDS:
                raise _bad(f"array {name} is not numeric")
            offset, count = f.tell(), int(np.prod(shape, dtype=np.int64)) if shape else 1
            if offset + count * dtype.itemsize > os.fstat(f.fileno()).st_size:
                raise _bad(f"array {name} is shorter than its header says")
            if count == 0:
                return np.empty(shape, dtype=dtype)
            return np.memmap(f, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")
    except (UnsafeOutput, ValueError) as exc:
        if isinstance(exc, ConversionError):
            raise
        raise _bad(f"array {name}: {exc}") from None


def members_folder(folder: Path) -> int:
    """A descriptor of the plan's members folder (the caller closes it)."""
    try:
        return open_folder(folder, MEMBERS)
    except UnsafeOutput as exc:
        raise _bad(str(exc)) from None


def member_file(members: int, op: dict) -> tuple[str, int]:
    """(name in the members folder, size) of a member's file, if it is a regular file of the size
    the plan says."""
    if not _MEMBER_NAME.match(str(op.get("file"))):
        raise _bad("member name")
    plain = op["file"].split("/", 1)[1]
    try:
        size = regular_file_in(members, plain).st_size
    except UnsafeOutput as exc:
        raise _bad(f"member {op['file']}: {exc}") from None
    if size != op.get("size"):
        raise _bad(f"member {op['file']} is not of the size the plan says")
    return plain, size
