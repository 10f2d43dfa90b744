"""What every files service function needs: the store, the clients of the other services, the limits."""
from __future__ import annotations

from dataclasses import dataclass, field

from services.files.clients import MetadataClient, NeoClient
from services.files.store import FilesStore
from shared.sandbox import SandboxSettings


@dataclass(frozen=True)
class Limits:
    default_page: int = 1000
    max_page: int = 10_000
    max_upload_bytes: int = 64 * 1024**3
    max_field_bytes: int = 64 * 1024  # a text field of the upload form
    archive_max_members: int = 1000
    archive_max_bytes: int = 2 * 1024**3  # all members expanded
    archive_max_ratio: float = 200.0  # expanded / compressed, per member and overall
    archive_max_depth: int = 3  # archives inside archives
    archive_max_total_bytes: int = 8 * 1024**3  # all archives of one upload, nested ones included
    archive_max_total_members: int = 10_000
    hdf5_max_dataset_bytes: int = 2 * 1024**3  # one declared array of an HDF5 upload
    conversion_max_attempts: int = 3
    csv_max_bytes: int = 256 * 1024**2
    odml_max_bytes: int = 32 * 1024**2
    datafile_quota_bytes: int = 0  # stored bytes per user (quota.py); 0 = unlimited


@dataclass(frozen=True)
class FilesContext:
    store: FilesStore
    neo: NeoClient
    metadata: MetadataClient
    limits: Limits = field(default_factory=Limits)
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)  # where uploads are parsed
