"""The content rules every hostile upload meets before a reader allocates or follows anything:
HDF5 (external storage, virtual datasets, links out of the file, huge declared sizes), TAR headers
(PAX and GNU long-name bombs, sparse files), YAML aliases, XML entities, and the plan a sandbox
hands back (checked as untrusted). Files are built here with h5py, tarfile, zipfile and PyYAML."""
from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import h5py
import numpy as np
import orjson
import pytest

from services.files.conversion.archive_rules import Budget, open_tar, tar_members
from services.files.conversion.errors import ConversionError
from services.files.conversion.hdf5_rules import check_hdf5, is_hdf5, superblock_offset
from services.files.conversion.plan import (
    PLAN_NAME, PlanWriter, load_array, member_file, members_folder, read_plan,
)
from services.metadata.odml_parse import InvalidDocument, read_document
from tests import hostile_files as hostile

MiB = 1024 * 1024


def check(path, limit=64 * MiB):
    check_hdf5(path, max_dataset_bytes=limit)


# --- HDF5 ---------------------------------------------------------------------------------------

def test_a_plain_hdf5_file_passes(tmp_path):
    path = tmp_path / "ok.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("signal", data=np.arange(100.0))
        f["group/alias"] = h5py.SoftLink("/signal")  # a path inside the file
        f["hard"] = f["signal"]
        f.attrs["format"] = "nix"
    check(path)


def test_external_raw_storage_is_refused_even_when_it_points_at_the_environment(tmp_path):
    path = tmp_path / "environ.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("signal", shape=(4096,), dtype="u1", external=[("/proc/self/environ", 0, 4096)])
    with pytest.raises(ConversionError, match="external files"):
        check(path)


def test_a_virtual_dataset_is_refused(tmp_path):
    other = tmp_path / "other_users_upload.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("secret", data=np.arange(10.0))
    layout = h5py.VirtualLayout(shape=(10,), dtype="f8")
    layout[:] = h5py.VirtualSource(str(other), "secret", shape=(10,))
    path = tmp_path / "virtual.h5"
    with h5py.File(path, "w") as f:
        f.create_virtual_dataset("signal", layout)
    with pytest.raises(ConversionError, match="virtual dataset"):
        check(path)


def test_an_external_link_is_refused_before_it_is_followed(tmp_path):
    path = tmp_path / "link.h5"
    with h5py.File(path, "w") as f:
        f.create_group("data")["signal"] = h5py.ExternalLink("/etc/passwd", "/anything")
    with pytest.raises(ConversionError, match="external link"):
        check(path)


def test_a_huge_declared_dataset_is_refused_before_anything_is_allocated(tmp_path):
    path = tmp_path / "huge.h5"
    with h5py.File(path, "w") as f:  # 8 TB declared, a few KB on disk (chunks never written)
        f.create_dataset("signal", shape=(10**12,), dtype="f8", chunks=(1024,), compression="gzip")
    assert path.stat().st_size < 100_000
    with pytest.raises(ConversionError, match="declares 8000000000000 bytes"):
        check(path)


def test_a_huge_declared_attribute_is_refused(tmp_path):
    path = tmp_path / "attr.h5"
    with h5py.File(path, "w", libver="latest") as f:  # dense attribute storage: no 64 KB cap
        f.create_dataset("signal", data=np.arange(3.0)).attrs["big"] = np.zeros(2 * MiB // 8)
    with pytest.raises(ConversionError, match="attribute 'big'"):
        check(path, limit=MiB)


def test_hdf5_is_found_where_matlab_keeps_it(tmp_path):
    path = tmp_path / "v73.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset("x", data=np.arange(3))
    assert superblock_offset(path) == 512 and is_hdf5(path)
    assert not is_hdf5(Path(__file__))


# --- archives -----------------------------------------------------------------------------------

def _tar_with_header(kind: bytes, declared: int) -> bytes:
    """A TAR whose first member is an extension header declaring `declared` bytes (its body is
    zeros: gzip shrinks gigabytes to a few megabytes; here only the header matters)."""
    header = tarfile.TarInfo("x" * 10)
    header.type = kind
    header.size = declared
    raw = header.tobuf(format=tarfile.GNU_FORMAT)
    return raw + b"\0" * 1024


def _budget(max_bytes=64 * MiB):
    return Budget(max_members=100, max_bytes=max_bytes, max_ratio=1e9, compressed_size=1000)


@pytest.mark.parametrize("kind,name", [(tarfile.XHDTYPE, "PAX"), (tarfile.GNUTYPE_LONGNAME, "GNU long-name")])
def test_a_4_gb_extension_header_is_refused_before_tarfile_reads_it(tmp_path, kind, name):
    path = tmp_path / "bomb.tar.gz"
    path.write_bytes(gzip.compress(_tar_with_header(kind, 4 * 1024**3)))
    with pytest.raises(ConversionError, match=f"a {name} header declares 4294967296 bytes"):
        tar_members(path, _budget())


def test_extension_headers_count_against_the_archive_budget(tmp_path):
    path = tmp_path / "many.tar"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for i in range(40):
            info = tarfile.TarInfo(f"f{i}")
            info.pax_headers = {"comment": "c" * 100_000}  # 100 KB of PAX header per member
            archive.addfile(info, io.BytesIO(b""))
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ConversionError, match="expands past"):
        tar_members(path, _budget(max_bytes=MiB))


def test_a_sparse_member_is_refused(tmp_path):
    info = tarfile.TarInfo("sparse")
    info.type = tarfile.GNUTYPE_SPARSE
    path = tmp_path / "sparse.tar"
    path.write_bytes(info.tobuf(format=tarfile.GNU_FORMAT) + b"\0" * 1024)
    with pytest.raises(ConversionError, match="sparse"):
        tar_members(path, _budget())


def test_a_plain_tar_passes(tmp_path):
    path = tmp_path / "ok.tar"
    with tarfile.open(path, "w") as archive:
        data = b"1,2,3\n"
        info = tarfile.TarInfo("a/b.csv")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    with open_tar(path, _budget()) as archive:
        assert [m.name for m in archive] == ["a/b.csv"]


# --- text formats --------------------------------------------------------------------------------

def test_a_yaml_alias_bomb_is_refused_at_its_first_alias():
    with pytest.raises(InvalidDocument, match="aliases"):
        read_document(hostile.yaml_alias_bomb()[1], "yaml")


def test_an_xml_entity_bomb_is_refused():
    with pytest.raises(InvalidDocument, match="DOCTYPE"):
        read_document(hostile.xml_entity_bomb()[1], "xml")


def test_yaml_without_aliases_still_reads():
    text = "odml-version: '1.1'\nDocument:\n  sections:\n  - name: s\n    type: t\n"
    assert [s.name for s in read_document(text.encode(), "yaml").sections] == ["s"]


# --- the plan a sandbox hands back ----------------------------------------------------------------

def _plan(folder, *ops):
    (folder / PLAN_NAME).write_bytes(b"".join(orjson.dumps(op) + b"\n" for op in ops))
    return list(read_plan(folder))


def test_a_plan_written_by_the_writer_reads_back(tmp_path):
    writer = PlanWriter(tmp_path, title="t")
    block = writer.create("block", {"name": "@0"})  # text that looks like a ref stays text
    writer.create("segment", {"name": "s", "block": block})
    writer.create_many("event", [{"label": "x", "block": block}] * 3)
    writer.close()
    ops = list(read_plan(tmp_path))
    assert ops[0]["body"] == {"name": "@0"} and ops[1]["links"] == {"block": 0}
    assert ops[2]["refs"] == [2, 3, 4] and ops[2]["links"] == [{"block": 0}] * 3


@pytest.mark.parametrize("op", [
    {"op": "create", "ref": 0, "type": "block", "body": {}, "links": {}, "arrays": {"signal": "../../secrets.npy"}},
    {"op": "create", "ref": 0, "type": "block", "body": {}, "links": {"segment": 5}, "arrays": {}},
    {"op": "create", "ref": 7, "type": "block", "body": {}, "links": {}, "arrays": {}},
    {"op": "create", "ref": 0, "type": "../x", "body": {}, "links": {}, "arrays": {}},
    {"op": "member", "path": "a", "file": "/etc/passwd", "size": 1},
    {"op": "member", "path": "a", "file": "members/0", "size": -1},
    {"op": "shell", "command": "rm -rf /"},
])
def test_a_malformed_plan_is_refused(tmp_path, op):
    with pytest.raises(ConversionError, match="not valid"):
        _plan(tmp_path, op)


def test_a_pickled_array_is_never_loaded(tmp_path):
    (tmp_path / "arrays").mkdir()
    np.save(tmp_path / "arrays" / "0-signal.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ConversionError, match="not valid"):
        load_array(tmp_path, "arrays/0-signal.npy")


def test_a_member_that_is_a_link_is_refused(tmp_path):
    (tmp_path / "members").mkdir()
    (tmp_path / "members" / "0").symlink_to("/etc/passwd")
    members = members_folder(tmp_path)
    try:
        with pytest.raises(ConversionError, match="not a regular file"):
            member_file(members, {"file": "members/0", "size": 10})
    finally:
        os.close(members)


def test_a_members_folder_replaced_by_a_link_is_refused(tmp_path):
    """A compromised parser swaps its members folder for a link to another user's uploads."""
    victim = tmp_path / "objects" / "042"
    victim.mkdir(parents=True)
    (victim / "42").write_bytes(b"someone else's recording")
    plan = tmp_path / "out"
    plan.mkdir()
    (plan / "members").symlink_to(victim)
    with pytest.raises(ConversionError, match="not a folder of the sandbox's own"):
        members_folder(plan)


def test_outputs_that_are_links_or_fifos_are_never_followed(tmp_path):
    from shared.sandbox.outputs import UnsafeOutput, open_output

    (tmp_path / "secret").write_text("not yours")
    (tmp_path / "link").symlink_to(tmp_path / "secret")
    os.mkfifo(tmp_path / "fifo")  # opening it for reading would block the worker forever
    (tmp_path / "sub").symlink_to(tmp_path)
    for name in ("link", "fifo", "sub/secret", "../secret", "missing"):
        with pytest.raises(UnsafeOutput):
            open_output(tmp_path, name)
    with open_output(tmp_path, "secret") as f:
        assert f.read() == b"not yours"


def test_an_array_file_shorter_than_its_header_is_refused(tmp_path):
    (tmp_path / "arrays").mkdir()
    path = tmp_path / "arrays" / "0-signal.npy"
    np.save(path, np.arange(1000.0))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ConversionError, match="shorter"):
        load_array(tmp_path, "arrays/0-signal.npy")
    np.save(path, np.arange(10.0))
    assert np.array_equal(load_array(tmp_path, "arrays/0-signal.npy"), np.arange(10.0))


def test_an_oversized_plan_line_is_refused(tmp_path, monkeypatch):
    from services.files.conversion import plan

    monkeypatch.setattr(plan, "MAX_LINE_BYTES", 100)
    (tmp_path / PLAN_NAME).write_text(json.dumps({"op": "create", "body": {"x": "y" * 200}}) + "\n")
    with pytest.raises(ConversionError, match="too long"):
        list(read_plan(tmp_path))


def test_scratch_folders_of_a_dead_worker_are_swept_when_old_enough(tmp_path):
    from services.files.conversion.sandboxed import sweep_stale_scratch

    old, recent, other = tmp_path / "parse-1-abc", tmp_path / "parse-2-def", tmp_path / "export-1.nix"
    for folder in (old, recent):
        (folder / "out").mkdir(parents=True)
    other.write_text("x")
    os.utime(old, (0, 0))
    assert sweep_stale_scratch(tmp_path, older_than_seconds=3600) == 1
    assert not old.exists() and recent.exists() and other.exists()


def test_deep_folders_count_against_the_member_limit(tmp_path):
    """Two tiny members 60 folders deep would make 120 sections: folders are counted, every level."""
    from services.files.conversion.converters.archive import parse_archive
    from services.files.conversion.detect import TAR, Candidate
    from services.files.conversion.source import ParseLimits, Source

    path = tmp_path / "deep.tar"
    with tarfile.open(path, "w") as archive:
        for top in ("a", "b"):
            info = tarfile.TarInfo("/".join([top] + [f"d{i}" for i in range(59)] + ["x.csv"]))
            archive.addfile(info, io.BytesIO(b""))
    source = Source(path=path, title="deep.tar", limits=ParseLimits(archive_max_members=100))
    plan = PlanWriter(tmp_path / "out", title="deep.tar")
    with pytest.raises(ConversionError, match="more than 100 folders"):
        parse_archive(source, plan, Candidate(TAR))
