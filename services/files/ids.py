"""Datafile ids: `datafile_9` or `9`; section ids as the metadata service writes them."""
from __future__ import annotations

import re
from typing import Any

from shared.params import InvalidId, parse_id, parse_optional_id, typed_id as typed

__all__ = ["InvalidId", "datafile_number", "parse_id", "parse_optional_section", "typed"]
_RESOURCE = re.compile(r"^datafile_(\d{1,18})$")


def parse_optional_section(raw: object) -> int | None:
    """A section id, or None (no section) for `None`, `""`, `"null"`, `"none"`, `"root"`, `0`."""
    return parse_optional_id(raw, "section")


def datafile_number(resource: Any) -> int | None:
    """The datafile id of a typed resource id (`datafile_9` -> 9); None for anything else."""
    if not isinstance(resource, str):
        return None
    match = _RESOURCE.match(resource.strip())
    if match is None:
        return None
    number = int(match.group(1))
    return number if number >= 1 else None
