"""Hostile uploads, built with the libraries an attacker would use (h5py, tarfile, zipfile, PyYAML,
neo's NixIO): each returns (file name, bytes). Used by the integration and end-to-end suites."""
from __future__ import annotations

import gzip
import io
import tarfile
import tempfile
import zipfile
from pathlib import Path

import h5py
import numpy as np

MiB = 1024 * 1024


def _hdf5(build) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f.h5"
        with h5py.File(path, "w") as f:
            build(f, Path(folder))
        return path.read_bytes()


def external_storage(target: str = "/proc/self/environ", size: int = 4096) -> tuple[str, bytes]:
    """The issue's exploit: a dataset whose raw bytes live in another file (the worker's environment)."""
    return "environ.h5", _hdf5(lambda f, _: f.create_dataset("signal", shape=(size,), dtype="u1",
                                                             external=[(target, 0, size)]))


def virtual_dataset(target: str) -> tuple[str, bytes]:
    def build(f, folder):
        layout = h5py.VirtualLayout(shape=(16,), dtype="u1")
        layout[:] = h5py.VirtualSource(target, "data", shape=(16,))
        f.create_virtual_dataset("signal", layout, fillvalue=0)
    return "virtual.h5", _hdf5(build)


def external_link(target: str) -> tuple[str, bytes]:
    def build(f, folder):
        f.create_dataset("signal", data=np.arange(10.0))
        f["theirs"] = h5py.ExternalLink(target, "/signal")
    return "link.h5", _hdf5(build)


def huge_declared_dataset() -> tuple[str, bytes]:
    """8 TB declared in a file of a few KB: a reader would allocate it before reading."""
    return "huge.h5", _hdf5(lambda f, _: f.create_dataset("signal", shape=(10**12,), dtype="f8", chunks=(4096,),
                                                          compression="gzip"))


def pax_header_bomb(declared: int = 4 * 1024**3) -> tuple[str, bytes]:
    """A small .tar.gz whose first member is a PAX header declaring 4 GB."""
    header = tarfile.TarInfo("x")
    header.type = tarfile.XHDTYPE
    header.size = declared
    return "bomb.tar.gz", gzip.compress(header.tobuf(format=tarfile.GNU_FORMAT) + b"\0" * (8 * MiB))


def zip_bomb(expanded: int = 64 * MiB) -> tuple[str, bytes]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", b"\0" * expanded)
    return "bomb.zip", buffer.getvalue()


def nested_archive_bomb(levels: int = 3, copies: int = 4, leaf_bytes: int = 64 * 1024) -> tuple[str, bytes]:
    """ZIPs of ZIPs: each level holds `copies` copies of the one below; every archive alone is
    small and within the per-archive limits, together they expand copies**levels times."""
    leaf = io.BytesIO()
    with zipfile.ZipFile(leaf, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("data.bin", np.random.default_rng(0).bytes(leaf_bytes))
    inner = leaf.getvalue()
    for level in range(levels):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for copy in range(copies):
                archive.writestr(f"level{level}_{copy}.zip", inner)
        inner = buffer.getvalue()
    return "nested.zip", inner


YAML_ALIAS_BOMB = b"""odml-version: '1.1'
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
Document:
  sections:
  - name: s
    type: t
    properties:
    - name: p
      value: [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def yaml_alias_bomb() -> tuple[str, bytes]:
    return "bomb.yaml", YAML_ALIAS_BOMB


def xml_entity_bomb() -> tuple[str, bytes]:
    entities = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    text = (f'<?xml version="1.0"?><!DOCTYPE odML [<!ENTITY l0 "lol">{entities}]>'
            '<odML version="1.1"><section><name>&l9;</name><type>t</type></section></odML>')
    return "bomb.odml", text.encode()


def reader_that_never_ends() -> tuple[str, bytes]:
    """A NIX file (written by neo's NixIO) whose signal unit is `9**9**9**9`: neo's reader hands it
    to quantities, which computes it, forever."""
    import neo
    import quantities as pq
    from neo.io import NixIO

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "hang.nix"
        block = neo.Block(name="b")
        segment = neo.Segment()
        block.segments.append(segment)
        segment.analogsignals.append(neo.AnalogSignal(np.zeros((10, 1)), units="mV", sampling_rate=1 * pq.kHz))
        with NixIO(str(path), mode="ow") as io_:
            io_.write_block(block)
        with h5py.File(path, "r+") as f:
            def patch(name, obj):
                if obj.attrs.get("unit") in (b"mV", "mV"):
                    obj.attrs["unit"] = "9**9**9**9"
            f.visititems(patch)
        return "hang.nix", path.read_bytes()
