"""What a parser gets: the upload (read-only), its name, the uploader's options and the limits."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping


@dataclass(frozen=True)
class ParseLimits:
    csv_max_bytes: int = 256 * 1024**2
    odml_max_bytes: int = 32 * 1024**2
    hdf5_max_dataset_bytes: int = 2 * 1024**3  # one declared array (readers allocate it whole)
    archive_max_members: int = 1000
    archive_max_bytes: int = 2 * 1024**3  # all members of one archive, expanded
    archive_max_ratio: float = 200.0  # expanded / compressed, per member and overall
    archive_max_depth: int = 3  # archives inside archives

    def to_params(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_params(cls, raw: Mapping[str, Any]) -> "ParseLimits":
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in raw.items() if k in known})


@dataclass(frozen=True)
class Source:
    path: Path
    title: str
    limits: ParseLimits
    options: Mapping[str, Any] = field(default_factory=dict)  # the uploader's, e.g. sampling_rate
    params: Mapping[str, Any] = field(default_factory=dict)  # the worker's, e.g. archive_depth
