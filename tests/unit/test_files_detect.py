"""Format detection (by content first), archive member names, the operations log, annotations."""
from __future__ import annotations

import io
import tarfile
import zipfile

import h5py
import numpy as np
import pytest

from services.files.conversion import detect
from services.files.conversion.archive_rules import safe_parts
from services.files.conversion.errors import ConversionError
from services.files.conversion.task import operations_log
from services.files.conversion.neo_objects import plain


def kinds(tmp_path, name, data):
    path = tmp_path / "stored"
    path.write_bytes(data)
    return [c.label for c in detect.detect(path, name)]


def test_csv_and_odml_and_plain_text(tmp_path):
    assert kinds(tmp_path, "x", b"1,2.5,-3e-2\n4,nan,inf\n# comment\n") == ["ascii-csv"]
    assert kinds(tmp_path, "x.csv", b"1,2\nthree,4\n") == []
    assert kinds(tmp_path, "x.txt", b"Dear diary\n") == []
    odml_xml = b'<?xml version="1.0" encoding="UTF-8"?>\n<odML version="1.1"><section/></odML>'
    assert kinds(tmp_path, "doc", odml_xml) == ["odml"]


def test_archives_by_their_magic(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.csv", "1,2\n")
    assert kinds(tmp_path, "noext", buffer.getvalue()) == ["zip"]
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("inner.zip")
        info.size = len(buffer.getvalue())
        archive.addfile(info, io.BytesIO(buffer.getvalue()))
    assert kinds(tmp_path, "noext", tar_buffer.getvalue()) == ["tar"]


def test_hdf5_nix_and_mat(tmp_path):
    h5 = io.BytesIO()
    with h5py.File(h5, "w") as f:
        f["x"] = np.arange(3)
    assert kinds(tmp_path, "a", h5.getvalue()) == ["hdf5"]
    assert kinds(tmp_path, "a.h5", h5.getvalue())[0] == "hdf5"  # content first, then readers by name
    nix = io.BytesIO()
    with h5py.File(nix, "w") as f:
        f.attrs["format"] = "nix"
    assert kinds(tmp_path, "a", nix.getvalue()) == ["neo-io(NixIO)", "hdf5"]
    assert kinds(tmp_path, "a", b"MATLAB 5.0 MAT-file, Platform: posix" + b"\x00" * 100) == ["neo-io(NeoMatlabIO)"]


def test_neuroshare_signatures_and_names(tmp_path):
    assert kinds(tmp_path, "x", b"MC_DataTool binary conversion\r\n") == ["neuroshare(RawMCSIO)"]
    assert kinds(tmp_path, "x", b"NEURALEV" + b"\x00" * 300) == ["neuroshare(BlackrockIO)"]
    assert "neo-io(AxonIO)" in kinds(tmp_path, "cell.abf", b"\x00" * 100)


@pytest.mark.parametrize("name", ["x.pkl", "x.pickle", "x.txt", "x.raw", "x.pl2"])
def test_unsafe_or_generic_readers_are_never_chosen_by_name(tmp_path, name):
    labels = kinds(tmp_path, name, b"\x80\x04\x95 not really \x00")
    assert not any(io in label for label in labels
                   for io in ("PickleIO", "AsciiSignalIO", "RawBinarySignalIO", "Plexon2IO"))


def test_readers_that_download_unpickle_or_load_libraries_are_never_used(tmp_path):
    """Plexon2IO fetches a DLL and runs it under wine; PickleIO unpickles; NeurosharectypesIO loads
    a library: refused even when asked for by name."""
    from services.files.conversion.converters.neo_io import read_neo_blocks

    path = tmp_path / "x.pl2"
    path.write_bytes(b"\x00" * 64)
    for io_name in ("Plexon2IO", "PickleIO", "NeurosharectypesIO", "NeuroshareIO", "ElphyIO"):
        with pytest.raises(ConversionError, match="never used on uploaded files"):
            read_neo_blocks(path, io_name)


@pytest.mark.parametrize("name, parts", [
    ("a/b/c.csv", ("a", "b", "c.csv")), ("./a//b.csv", ("a", "b.csv")), ("dir/", ("dir",)),
])
def test_safe_member_names(name, parts):
    assert safe_parts(name) == parts


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "/etc/passwd", "C:\\evil", "..\\evil", "a\x00b"])
def test_escaping_member_names_are_refused(name):
    with pytest.raises(ConversionError):
        safe_parts(name)


def test_operations_log_as_in_the_seed():
    entries = [{"converter": "neuroshare", "outcome": "failure", "detail": ""},
               {"converter": "ascii-csv", "outcome": "success", "detail": ""}]
    assert operations_log(entries) == "neuroshare: failure ascii-csv: success "
    entries[0]["detail"] = "bad header"
    assert operations_log(entries).startswith("neuroshare: failure (bad header) ")
    assert operations_log([]) == ""


def test_annotations_become_json_safe():
    import quantities as pq

    value = plain({"a": np.int64(3), "b": np.array([1.5, 2.0]), "c": 2 * pq.ms, "d": {"e": (1, b"x")}, "f": float("nan")})
    assert value == {"a": 3, "b": [1.5, 2.0], "c": {"units": "ms", "data": 2.0}, "d": {"e": [1, "x"]}, "f": "nan"}
