"""Conversion types 1 (Neuroshare family) and 2 (NEO I/O): a neo reader's blocks become NEO objects.

The reader gets the upload under the name it expects (a symbolic link in the scratch folder, the
only other place the sandbox may touch). Readers that unpickle, execute, download or load native
code are never used (detect.UNSAFE_IOS).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from services.files.conversion import neo_objects
from services.files.conversion.detect import UNSAFE_IOS
from services.files.conversion.errors import ConversionError


def named_link(source, extension: str | None, folder: Path) -> Path:
    """The upload under the name a neo reader expects, as a link in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"upload.{extension}" if extension else "upload"
    link = folder / name
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(os.path.abspath(source.path), link)
    return link


def _reader(io_name: str, path: Path):
    import neo.io

    if io_name in UNSAFE_IOS:
        raise ConversionError(f"{io_name} is never used on uploaded files")
    cls = getattr(neo.io, io_name, None)
    if cls is None:
        raise ConversionError(f"no neo reader {io_name}")
    if io_name == "NixIO":
        return cls(str(path), mode="ro")
    if io_name == "NWBIO":
        return cls(str(path), mode="r")
    return cls(str(path))


def read_neo_blocks(path: Path, io_name: str) -> list[Any]:
    """Every block a neo reader finds in the file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reader = _reader(io_name, path)
            try:
                if hasattr(reader, "read_all_blocks"):
                    blocks = reader.read_all_blocks(lazy=False)
                else:
                    blocks = [reader.read_block(lazy=False)]
            finally:
                close = getattr(reader, "close", None)
                if callable(close):
                    try:
                        close()
                    except Exception:
                        pass
        except (ConversionError, MemoryError):
            raise
        except Exception as exc:  # the reader's word on the content
            raise ConversionError(f"{io_name} cannot read it: {type(exc).__name__}: {str(exc)[:300]}") from None
    blocks = [b for b in (blocks or []) if b is not None]
    if not blocks:
        raise ConversionError(f"{io_name} found no data")
    return blocks


def parse_neo(source, plan, candidate) -> dict[str, Any]:
    """NEO I/O (and the Neuroshare family through neo's readers): blocks, segments, signals, spike
    trains, events, epochs."""
    link = named_link(source, candidate.extension, plan.folder.parent / "named")  # beside the plan, not in it
    blocks = read_neo_blocks(link, candidate.io_name)
    for position, block in enumerate(blocks):
        neo_objects.write_block(plan, block, position)
    return {"kind": "objects", "reader": candidate.io_name}
