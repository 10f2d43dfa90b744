"""What every metadata service function needs: the collections, the limits, the files service."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from services.metadata.clients import FilesClient
from services.metadata.store import MetadataStore
from shared.sandbox import SandboxSettings

# Reading one odML document: far less than a conversion needs.
IMPORT_SANDBOX = SandboxSettings(cpu_seconds=60, wall_seconds=120.0, memory_bytes=2 * 1024**3,
                                 output_bytes=512 * 1024**2)


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
    # Which linked datafiles a caller may read (not configured: none are shown).
    files: FilesClient = field(default_factory=lambda: FilesClient("", ""))
    sandbox: SandboxSettings = IMPORT_SANDBOX  # where uploaded odML documents are parsed
    sandbox_dir: Path | None = None  # where imports get scratch folders (None: the system's temporary folder)
    # Sandboxes this process runs at once (each may use SANDBOX_MEMORY_BYTES); more imports wait, then 503.
    import_slots: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(2))
