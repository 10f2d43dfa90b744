"""What every neo service function needs: the collections, the array store and the limits."""
from __future__ import annotations

from dataclasses import dataclass

from services.neo.arrays import ArrayStore
from services.neo.quota import ArrayQuota
from services.neo.store import NeoStore


@dataclass(frozen=True)
class Limits:
    default_page: int = 1000
    max_page: int = 10_000
    max_create_batch: int = 10_000
    json_max_samples: int = 5_000_000  # larger arrays: use a window, `downsample` or `format=npy`
    cascade_max_objects: int = 5_000
    cascade_max_samples: int = 5_000_000


@dataclass(frozen=True)
class NeoContext:
    store: NeoStore
    arrays: ArrayStore
    limits: Limits
    quota: ArrayQuota
