"""What every metadata service function needs: the collections and the limits."""
from __future__ import annotations

from dataclasses import dataclass, field

from services.metadata.store import MetadataStore


@dataclass(frozen=True)
class Limits:
    default_page: int = 1000
    max_page: int = 10_000
    max_tree: int = 10_000  # sections copied, exported or imported in one request
    max_values: int = 10_000  # values of one property
    max_import_bytes: int = 32 * 1024 * 1024
    search_text_chars: int = 100_000


@dataclass(frozen=True)
class MetadataContext:
    store: MetadataStore
    limits: Limits = field(default_factory=Limits)
