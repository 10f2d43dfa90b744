"""Rules every HDF5 upload must pass before any reader (h5py, NixIO, NWBIO, MATLAB 7.3) opens it.

HDF5 can make a reader open other files: a dataset may keep its bytes in external raw files (any
path, `/proc/self/environ` included), a virtual dataset maps other files' datasets, an external
link resolves into another file. Each would let an upload read what its uploader may not. A
dataset also declares its shape, and readers allocate that much before they read a byte.

`check_hdf5` walks every link and object of the file without following anything out of it, and
refuses: external links and user-defined links; datasets with external storage or a virtual
layout; datasets and attributes whose declared size passes the limit; more than MAX_OBJECTS
objects. Soft links stay inside the file by definition and are allowed.
"""
from __future__ import annotations

import math
from pathlib import Path

from services.files.conversion.errors import ConversionError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
MAX_OBJECTS = 1_000_000


def superblock_offset(path: Path) -> int | None:
    """Where the HDF5 superblock is (0, 512, 1024, 2048, ...), or None for a file that is not HDF5.

    HDF5 finds its superblock at any of these offsets: a MATLAB 7.3 file keeps it at 512."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        offset = 0
        while offset + len(HDF5_MAGIC) <= size:
            f.seek(offset)
            if f.read(len(HDF5_MAGIC)) == HDF5_MAGIC:
                return offset
            offset = 512 if offset == 0 else offset * 2
    return None


def is_hdf5(path: Path) -> bool:
    return superblock_offset(path) is not None


class _Walk:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.seen: set[int] = set()
        self.objects = 0

    def _count(self) -> None:
        self.objects += 1
        if self.objects > MAX_OBJECTS:
            raise ConversionError(f"the HDF5 file holds more than {MAX_OBJECTS} objects")

    def _declared(self, where: str, shape, itemsize: int) -> None:
        count = math.prod(shape) if shape else 1
        if count * itemsize > self.max_bytes:
            raise ConversionError(f"{where} declares {count * itemsize} bytes, more than the limit of "
                                  f"{self.max_bytes} bytes for one array")

    def attributes(self, obj) -> None:
        import h5py

        for name in obj.attrs:
            attr = h5py.h5a.open(obj.id, name.encode("utf-8") if isinstance(name, str) else name)
            self._declared(f"the attribute {name!r} of {obj.name}", attr.shape, attr.dtype.itemsize)

    def dataset(self, dataset) -> None:
        import h5py

        plist = dataset.id.get_create_plist()
        if plist.get_layout() == h5py.h5d.VIRTUAL:
            raise ConversionError(f"the dataset {dataset.name} is a virtual dataset (it maps other files); "
                                  "virtual datasets are refused")
        if plist.get_external_count() > 0:
            raise ConversionError(f"the dataset {dataset.name} keeps its data in external files; external "
                                  "storage is refused")
        self._declared(f"the dataset {dataset.name}", dataset.shape, dataset.dtype.itemsize)

    def group(self, group) -> None:
        import h5py

        for name in group:
            where = f"{group.name.rstrip('/')}/{name}"
            try:
                link = group.get(name, getlink=True)
            except (TypeError, KeyError, OSError):
                raise ConversionError(f"{where} is a link of a kind this service does not follow") from None
            if isinstance(link, h5py.ExternalLink):
                raise ConversionError(f"{where} is an external link (to {link.filename!r}); links out of the "
                                      "file are refused")
            if isinstance(link, h5py.SoftLink):
                continue  # a path inside this file; its target is checked through its own hard link
            if not isinstance(link, h5py.HardLink):
                raise ConversionError(f"{where} is a user-defined link; such links are refused")
            self.visit(group[name])

    def visit(self, obj) -> None:
        import h5py

        address = h5py.h5o.get_info(obj.id).addr
        if address in self.seen:
            return
        self.seen.add(address)
        self._count()
        self.attributes(obj)
        if isinstance(obj, h5py.Dataset):
            self.dataset(obj)
        elif isinstance(obj, h5py.Group):
            self.group(obj)


def check_hdf5(path: Path, *, max_dataset_bytes: int) -> None:
    """Raise ConversionError when the file breaks a rule (see the module's docstring)."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ConversionError(f"not a readable HDF5 file: {exc}") from None
    with f:
        try:
            _Walk(max_dataset_bytes).visit(f)
        except ConversionError:
            raise
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            raise ConversionError(f"the HDF5 file cannot be read safely: {exc}") from None
