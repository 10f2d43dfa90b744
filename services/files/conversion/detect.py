"""Which converters can read a file, decided from its content first and its name second.

`detect(path, title)` returns candidates in the order they are tried. Each names the converter
(as it appears in `operations_log`), the conversion type of seed 000 and, for NEO readers, the
neo I/O class. NEO readers that unpickle or evaluate file content (PickleIO, ElphyIO), load
native libraries named by the file (NeurosharectypesIO) or download and run code (Plexon2IO
fetches a DLL and runs it under wine) are never used. Detection runs in the parse sandbox: it
opens the upload with h5py and tarfile.
"""
from __future__ import annotations

import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

from services.files.conversion.archive_rules import Budget, open_tar
from services.files.conversion.errors import ConversionError
from services.files.conversion.hdf5_rules import is_hdf5

NEUROSHARE, NEO_IO, ASCII_CSV, ODML, HDF5, ZIP, TAR = 1, 2, 3, 4, 5, 6, 7
CONVERTER_NAMES = {NEUROSHARE: "neuroshare", NEO_IO: "neo-io", ASCII_CSV: "ascii-csv", ODML: "odml", HDF5: "hdf5",
                   ZIP: "zip", TAR: "tar"}
# Never: they unpickle (PickleIO), eval() header text (ElphyIO), load a shared library
# (NeurosharectypesIO, also exported as NeuroshareIO), or download a DLL and run it (Plexon2IO).
UNSAFE_IOS = frozenset({"PickleIO", "ElphyIO", "NeurosharectypesIO", "NeuroshareIO", "Plexon2IO", "ExampleIO"})
# Readers that take any bytes or any text as data: never chosen by a file's name alone.
GENERIC_IOS = frozenset({"AsciiSignalIO", "AsciiSpikeTrainIO", "AsciiImageIO", "RawBinarySignalIO", "TiffIO"})
# Formats of the Neuroshare family (vendors with Neuroshare libraries), recognised by their
# signature and read with neo's native reader of the format: (offset, magic, neo I/O, extension).
NEUROSHARE_SIGNATURES = (
    (0, b"MC_DataTool binary conversion", "RawMCSIO", "raw"),
    (0, b"PLEX", "PlexonIO", "plx"),
    (0, b"NEURALEV", "BlackrockIO", "nev"),
    (0, b"NEURALCD", "BlackrockIO", "ns5"),
    (0, b"NEURALSG", "BlackrockIO", "ns5"),
    (0, b"NEX1", "NeuroExplorerIO", "nex"),
    (0, b"NEX5", "NeuroExplorerIO", "nex5"),
    (2, b"(C) CED 87", "Spike2IO", "smr"),
)
_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?|nan|inf|-inf)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Candidate:
    conversion_type: int
    io_name: str | None = None  # the neo I/O class, for NEUROSHARE and NEO_IO
    extension: str | None = None  # the extension the reader needs the file to have

    @property
    def converter(self) -> str:
        return CONVERTER_NAMES[self.conversion_type]

    @property
    def label(self) -> str:
        return f"{self.converter}({self.io_name})" if self.io_name else self.converter


def _head(path: Path, size: int = 65536) -> bytes:
    with open(path, "rb") as f:
        return f.read(size)


def _hdf5_kind(path: Path) -> str:
    """"nix", "nwb" or "hdf5" for an HDF5 file (by its root attributes)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            attrs = f.attrs
            fmt = attrs.get("format")
            if isinstance(fmt, bytes):
                fmt = fmt.decode("utf-8", "replace")
            if fmt == "nix":
                return "nix"
            if "nwb_version" in attrs or ".specloc" in attrs:
                return "nwb"
    except Exception:
        return "hdf5"
    return "hdf5"


def _text(head: bytes) -> str | None:
    if b"\x00" in head:
        return None
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start > len(head) - 4:  # a multi-byte character cut by the sample's end
            return head[:exc.start].decode("utf-8")
        return None


def looks_like_odml(text: str) -> bool:
    start = text.lstrip("\ufeff \t\r\n")[:4096]
    if re.search(r"<odML[\s>]", start):
        return True
    if start.startswith("{"):
        return '"odml-version"' in start or '"odML"' in start
    return bool(re.search(r"^odml-version\s*:", start, re.MULTILINE)) and "Document:" in text[:65536]


def looks_like_csv(text: str, complete: bool) -> bool:
    lines = text.splitlines()
    if not complete and lines:
        lines = lines[:-1]  # the last line may be cut by the sample
    rows = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not rows:
        return False
    for line in rows[:200]:
        cells = line.rstrip(",").split(",")
        if not all(_NUMBER.match(cell) for cell in cells):
            return False
    return True


def _neo_ios_by_extension(title: str) -> list[Candidate]:
    import neo.io

    suffix = Path(title).suffix.lower().lstrip(".")
    if not suffix:
        return []
    found, seen = [], set()
    for cls in neo.io.iolist:
        if cls.__name__ in UNSAFE_IOS or cls.__name__ in GENERIC_IOS or cls.__name__ in seen:
            continue
        if getattr(cls, "mode", "file") != "file" or not getattr(cls, "is_readable", False):
            continue
        if suffix in [e.lower() for e in getattr(cls, "extensions", [])]:
            seen.add(cls.__name__)
            found.append(Candidate(NEO_IO, cls.__name__, suffix))
    return found


def detect(path: Path, title: str) -> list[Candidate]:
    head = _head(path)
    size = path.stat().st_size
    candidates: list[Candidate] = []
    # By the magic at the start only: zipfile.is_zipfile also says yes to a TAR that holds a ZIP.
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        candidates.append(Candidate(ZIP))
    elif is_hdf5(path):
        kind = _hdf5_kind(path)
        if kind == "nix":
            candidates.append(Candidate(NEO_IO, "NixIO", "nix"))
        elif kind == "nwb":
            candidates.append(Candidate(NEO_IO, "NWBIO", "nwb"))
        candidates.append(Candidate(HDF5))
    elif head.startswith(b"MATLAB 5.0 MAT-file"):
        candidates.append(Candidate(NEO_IO, "NeoMatlabIO", "mat"))
    else:
        for offset, magic, io_name, extension in NEUROSHARE_SIGNATURES:
            if head[offset:offset + len(magic)] == magic:
                candidates.append(Candidate(NEUROSHARE, io_name, extension))
                break
        if not candidates and _is_tar(path, head):
            candidates.append(Candidate(TAR))
        if not candidates:
            text = _text(head)
            if text is not None and looks_like_odml(text):
                candidates.append(Candidate(ODML))
            elif text is not None and looks_like_csv(text, complete=size <= len(head)):
                candidates.append(Candidate(ASCII_CSV))
    known = {c.io_name for c in candidates}
    candidates += [c for c in _neo_ios_by_extension(title) if c.io_name not in known]
    return candidates


def _is_tar(path: Path, head: bytes) -> bool:
    if head[257:262] == b"ustar":
        return True
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        # The first header only, measured before tarfile reads it (a compressed PAX header can claim gigabytes).
        budget = Budget(max_members=1, max_bytes=64 * 1024**2, max_ratio=float("inf"), compressed_size=len(head))
        try:
            with open_tar(path, budget) as archive:
                return archive.next() is not None
        except ConversionError:
            return True  # a TAR, and a hostile one: the archive converter says why it refuses it
        except (tarfile.TarError, OSError, EOFError, ValueError):
            return False
    return False


def describe(candidates: list[Candidate]) -> str:
    return json.dumps([c.label for c in candidates])
