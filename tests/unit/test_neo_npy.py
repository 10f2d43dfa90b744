"""services.neo.npy: incremental .npy parsing and streaming .npy output."""
from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
from numpy.lib import format as npformat

from services.neo.npy import NpyStream, iter_npy, npy_header


def _npy(arr, version=None) -> bytes:
    buf = io.BytesIO()
    if version is None:
        np.save(buf, arr)
    else:
        npformat.write_array(buf, arr, version=version)
    return buf.getvalue()


class Trickle(io.RawIOBase):
    """A stream returning at most `step` bytes per call, like a socket."""

    def __init__(self, data: bytes, step: int = 7):
        self._data, self._pos, self._step = data, 0, step

    def readable(self):
        return True

    def readinto(self, buf):
        n = min(len(buf), self._step, len(self._data) - self._pos)
        buf[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        return n


class ReadOnly:
    """A file-like with read() only."""

    def __init__(self, data: bytes, step: int = 5):
        self._data, self._pos, self._step = data, 0, step

    def read(self, n=-1):
        n = min(n, self._step)
        out = self._data[self._pos:self._pos + n]
        self._pos += len(out)
        return out


def _collect(stream: NpyStream, rows: int) -> np.ndarray:
    parts = list(stream.iter_chunks(rows))
    assert all(len(p) <= rows and p.dtype == stream.dtype for p in parts)
    return np.concatenate(parts) if parts else np.empty(stream.shape, stream.dtype)


@pytest.mark.parametrize("version", [None, (1, 0), (2, 0), (3, 0)])
@pytest.mark.parametrize("arr", [
    np.arange(1000, dtype=np.float32),
    np.arange(1001, dtype=np.int16) - 500,
    np.random.default_rng(0).standard_normal((37, 4, 5)),
    np.arange(10, dtype=">f8"),
])
def test_header_versions_and_chunks(version, arr):
    stream = NpyStream(io.BytesIO(_npy(arr, version)))
    assert stream.shape == arr.shape
    assert stream.dtype == arr.dtype
    assert stream.fortran_order is False
    assert stream.version == (version or (1, 0))
    assert stream.nbytes == arr.nbytes
    out = _collect(stream, 64)
    np.testing.assert_array_equal(out, arr)


def test_chunks_are_incremental_and_sized():
    arr = np.arange(10_000, dtype=np.float64)
    buf = io.BytesIO(_npy(arr))
    stream = NpyStream(buf)
    it = stream.iter_chunks(1000)
    first = next(it)
    assert first.shape == (1000,)
    # only the header and the first chunk have been consumed
    assert buf.tell() == stream.header_bytes + 8000
    rest = list(it)
    assert [len(p) for p in rest] == [1000] * 9


@pytest.mark.parametrize("wrap", [lambda d: Trickle(d, 7), lambda d: ReadOnly(d, 5)])
def test_short_reads(wrap):
    arr = np.random.default_rng(1).standard_normal((50, 3)).astype(np.float32)
    stream = NpyStream(wrap(_npy(arr)))
    np.testing.assert_array_equal(_collect(stream, 8), arr)


def test_truncated_data_reports_sizes():
    arr = np.arange(100, dtype=np.float64)
    data = _npy(arr)[:-300]
    stream = NpyStream(io.BytesIO(data))
    with pytest.raises(ValueError, match=r"truncated .npy data: expected 800 bytes, got 500"):
        list(stream.iter_chunks(30))


def test_truncated_header():
    data = _npy(np.arange(5))
    for cut in (3, 9, 20):
        with pytest.raises(ValueError, match="truncated"):
            NpyStream(io.BytesIO(data[:cut]))


def test_object_arrays_refused_without_unpickling(monkeypatch):
    data = _npy(np.array([{"a": 1}, None], dtype=object))

    def boom(*_a, **_k):
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    with pytest.raises(ValueError, match="object"):
        NpyStream(io.BytesIO(data))


def test_structured_dtype_with_object_field_refused():
    arr = np.zeros(3, dtype=[("x", "f4"), ("o", "O")])
    with pytest.raises(ValueError, match="object"):
        NpyStream(io.BytesIO(_npy(arr)))


@pytest.mark.parametrize("payload", [
    pickle.dumps(np.arange(5)),
    b"PK\x03\x04" + b"\0" * 100,  # an .npz archive
    b"",
    b"hello world, not numpy",
])
def test_not_npy_refused(payload):
    with pytest.raises(ValueError, match="not a .npy stream"):
        NpyStream(io.BytesIO(payload))


def _raw_header(text: str, version=(1, 0)) -> bytes:
    body = text.encode("latin1")
    size = len(body).to_bytes(2 if version == (1, 0) else 4, "little")
    return b"\x93NUMPY" + bytes(version) + size + body


@pytest.mark.parametrize("text", [
    "{'descr': __import__('os').system('true'), 'fortran_order': False, 'shape': (3,)}",
    "{'descr': '<f4', 'fortran_order': False}",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
    "{'descr': '<f4', 'fortran_order': 'no', 'shape': (3,)}",
    "{'descr': 'not-a-dtype', 'fortran_order': False, 'shape': (3,)}",
    "[1, 2, 3]",
])
def test_bad_headers(text):
    with pytest.raises(ValueError):
        NpyStream(io.BytesIO(_raw_header(text) + b"\0" * 64))


def test_unknown_version():
    with pytest.raises(ValueError, match="version"):
        NpyStream(io.BytesIO(_raw_header("{}", (9, 0))))


def test_fortran_order():
    two_d = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    with pytest.raises(ValueError, match="fortran"):
        NpyStream(io.BytesIO(_npy(two_d)))
    # 1-D and degenerate shapes have the same bytes in both orders
    for shape in [(5,), (5, 1)]:
        buf = io.BytesIO()
        npformat.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": True, "shape": shape})
        buf.write(np.arange(5.0).tobytes())
        buf.seek(0)
        stream = NpyStream(buf)
        assert stream.fortran_order is True
        np.testing.assert_array_equal(_collect(stream, 2), np.arange(5.0).reshape(shape))


def test_empty_and_scalar():
    stream = NpyStream(io.BytesIO(_npy(np.empty((0, 32), np.float32))))
    assert stream.shape == (0, 32)
    assert list(stream.iter_chunks(10)) == []
    scalar = NpyStream(io.BytesIO(_npy(np.float64(2.5))))
    assert scalar.shape == ()
    assert scalar.read() == 2.5


def test_data_read_once():
    stream = NpyStream(io.BytesIO(_npy(np.arange(4))))
    list(stream.iter_chunks(2))
    with pytest.raises(RuntimeError):
        list(stream.iter_chunks(2))


# ---- output -------------------------------------------------------------------------------------

@pytest.mark.parametrize("arr", [
    np.arange(100_000, dtype=np.float32),
    np.arange(0, dtype=np.int16),
    np.random.default_rng(2).standard_normal((33, 2, 7)),
])
def test_iter_npy_loads_with_numpy(arr):
    chunks = (arr[i:i + 1000] for i in range(0, len(arr), 1000))
    parts = list(iter_npy(arr.shape, arr.dtype, chunks))
    assert parts[0] == npy_header(arr.shape, arr.dtype)
    assert max(len(p) for p in parts[1:] or [b""]) <= 1000 * arr[:1].nbytes  # streamed, not built whole
    loaded = np.load(io.BytesIO(b"".join(parts)), allow_pickle=False)
    assert loaded.dtype == arr.dtype
    np.testing.assert_array_equal(loaded, arr)
    # and back through NpyStream
    np.testing.assert_array_equal(_collect(NpyStream(io.BytesIO(b"".join(parts))), 77), arr)


def test_iter_npy_casts_and_checks_rows():
    out = b"".join(iter_npy((4,), "float32", [np.array([1, 2]), np.array([3.5, 4])]))
    loaded = np.load(io.BytesIO(out))
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, [1, 2, 3.5, 4])
    with pytest.raises(ValueError, match="announced"):
        b"".join(iter_npy((5,), "float32", [np.zeros(3)]))
    with pytest.raises(ValueError, match="more than"):
        b"".join(iter_npy((2,), "float32", [np.zeros(3)]))
    with pytest.raises(ValueError, match="does not fit"):
        b"".join(iter_npy((2, 3), "float32", [np.zeros((2, 4))]))


def test_npy_header_is_aligned_and_falls_back_to_v2():
    header = npy_header((10, 3), np.float32)
    assert header[:8] == b"\x93NUMPY\x01\x00"
    assert len(header) % 64 == 0
    wide = np.dtype([(f"field_{i:05d}_" + "x" * 20, "<f4") for i in range(3000)])
    big = npy_header((1,), wide)
    assert big[:8] == b"\x93NUMPY\x02\x00"
    shape, fortran, dtype = _parse_v2(big)
    assert shape == (1,) and not fortran and dtype == wide


def _parse_v2(header: bytes):
    buf = io.BytesIO(header)
    npformat.read_magic(buf)
    return npformat.read_array_header_2_0(buf, max_header_size=10**6)


@pytest.mark.parametrize("shape,dtype", [((0,), np.float64), ((5,), np.int16), ((7, 2, 3), np.float32),
                                         ((3, 70_000), np.uint8)])
def test_npy_length_is_the_length_of_the_stream(shape, dtype):
    from services.neo.npy import npy_length

    arr = np.zeros(shape, dtype=dtype)
    streamed = b"".join(iter_npy(shape, dtype, [arr]))
    assert npy_length(shape, dtype) == len(streamed) == len(_npy(arr))
