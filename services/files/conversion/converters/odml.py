"""Conversion type 4 (odML): the document goes to the metadata service, which parses it in a
sandbox of its own; here only its size is checked."""
from __future__ import annotations

from typing import Any

from services.files.conversion.errors import ConversionError


def parse_odml(source, plan, candidate) -> dict[str, Any]:
    if source.path.stat().st_size > source.limits.odml_max_bytes:
        raise ConversionError(f"odML documents are imported up to {source.limits.odml_max_bytes} bytes")
    return {"kind": "odml"}
