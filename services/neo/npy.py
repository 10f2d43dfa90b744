"""Streaming .npy in and out: arrays of any size pass through in bounded memory.

`NpyStream` parses the header of a .npy file-like (an upload, a request body, a file) and then
reads the data incrementally with `iter_chunks`; `iter_npy` produces a .npy byte stream from chunks.
Nothing here ever unpickles: object dtypes are refused outright.
"""
from __future__ import annotations

import ast
import io
import math
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npformat

MAGIC = b"\x93NUMPY"
MAX_HEADER_BYTES = 10_000  # numpy's own default limit for trusted loading
_HEADER_KEYS = {"descr", "fortran_order", "shape"}


def _read_exact(fileobj: BinaryIO, view: memoryview) -> int:
    """Fill `view` from `fileobj` (streams may return short reads); returns the bytes read (< len at EOF)."""
    readinto = getattr(fileobj, "readinto", None)
    got, want = 0, len(view)
    while got < want:
        if readinto is not None:
            n = readinto(view[got:])
        else:
            data = fileobj.read(want - got)
            n = len(data) if data else 0
            view[got:got + n] = data if n else b""
        if not n:
            break
        got += n
    return got


def _read_bytes(fileobj: BinaryIO, size: int, what: str) -> bytes:
    buf = bytearray(size)
    got = _read_exact(fileobj, memoryview(buf))
    if got != size:
        raise ValueError(f"not a .npy stream: truncated {what} (expected {size} bytes, got {got})")
    return bytes(buf)


class NpyStream:
    """A .npy stream whose data is read incrementally, at most one chunk at a time.

    The header is parsed on construction; `iter_chunks` can be consumed once.
    """

    def __init__(self, fileobj: BinaryIO):
        self._file = fileobj
        magic = _read_bytes(fileobj, 8, "magic string")
        if magic[:6] != MAGIC:
            raise ValueError("not a .npy stream (bad magic string; pickles and .npz archives are not accepted)")
        self.version = (magic[6], magic[7])
        if self.version == (1, 0):
            header_len = int.from_bytes(_read_bytes(fileobj, 2, "header length"), "little")
        elif self.version in ((2, 0), (3, 0)):
            header_len = int.from_bytes(_read_bytes(fileobj, 4, "header length"), "little")
        else:
            raise ValueError(f"unsupported .npy format version {self.version[0]}.{self.version[1]}")
        if header_len > MAX_HEADER_BYTES:
            raise ValueError(f".npy header too large ({header_len} bytes, limit {MAX_HEADER_BYTES})")
        raw = _read_bytes(fileobj, header_len, "header")
        self.header_bytes = 6 + 2 + (2 if self.version == (1, 0) else 4) + header_len
        try:
            text = raw.decode("utf8" if self.version == (3, 0) else "latin1")
            header = ast.literal_eval(text)
        except (UnicodeDecodeError, ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            raise ValueError(f"cannot parse .npy header: {exc}") from None
        if not isinstance(header, dict) or set(header) != _HEADER_KEYS:
            raise ValueError(f".npy header must be a dict with keys {sorted(_HEADER_KEYS)}")
        shape, fortran = header["shape"], header["fortran_order"]
        if not isinstance(shape, tuple) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise ValueError(f"invalid shape in .npy header: {shape!r}")
        if not isinstance(fortran, bool):
            raise ValueError(f"invalid fortran_order in .npy header: {fortran!r}")
        try:
            dtype = npformat.descr_to_dtype(header["descr"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid dtype in .npy header: {header['descr']!r} ({exc})") from None
        if dtype.hasobject:
            raise ValueError("object arrays are not accepted (.npy object data is a pickle)")
        if fortran and sum(1 for d in shape if d > 1) > 1:
            raise ValueError("fortran-ordered multi-dimensional .npy data is not accepted; save it in C order")
        self.shape: tuple[int, ...] = shape
        self.dtype: np.dtype = dtype
        self.fortran_order: bool = fortran
        self._consumed = False

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __repr__(self) -> str:
        return f"NpyStream(shape={self.shape}, dtype={self.dtype.str!r}, version={self.version})"

    def iter_chunks(self, rows: int) -> Iterator[np.ndarray]:
        """Yield the data as arrays of at most `rows` rows along axis 0 (a 0-d array: once, as is).

        Raises ValueError when the stream ends early: "expected N bytes, got M"."""
        if rows < 1:
            raise ValueError("rows must be >= 1")
        if self._consumed:
            raise RuntimeError("NpyStream data can only be read once")
        self._consumed = True
        if not self.shape:
            yield self._read_rows((), 0)
            return
        total_rows, row_shape = self.shape[0], self.shape[1:]
        done = 0
        while done < total_rows:
            count = min(rows, total_rows - done)
            yield self._read_rows((count, *row_shape), done)
            done += count

    def _read_rows(self, shape: tuple[int, ...], rows_done: int) -> np.ndarray:
        out = np.empty(shape, dtype=self.dtype)
        view = memoryview(out.reshape(-1).view(np.uint8))
        got = _read_exact(self._file, view)
        if got != len(view):
            row_bytes = math.prod(self.shape[1:]) * self.dtype.itemsize if self.shape else 0
            received = rows_done * row_bytes + got
            raise ValueError(f"truncated .npy data: expected {self.nbytes} bytes, got {received}")
        return out

    def read(self) -> np.ndarray:
        """The whole array in memory (for small inputs only)."""
        if not self.shape:
            return next(self.iter_chunks(1))
        parts = list(self.iter_chunks(max(1, self.shape[0])))
        return parts[0] if parts else np.empty(self.shape, dtype=self.dtype)


def npy_header(shape: tuple[int, ...] | list[int], dtype) -> bytes:
    """The .npy header (format 1.0, or 2.0 when it does not fit) for a C-ordered array."""
    header = {"descr": npformat.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": tuple(int(d) for d in shape)}
    buf = io.BytesIO()
    try:
        npformat.write_array_header_1_0(buf, header)
    except ValueError:
        buf = io.BytesIO()
        npformat.write_array_header_2_0(buf, header)
    return buf.getvalue()


def npy_length(shape: tuple[int, ...] | list[int], dtype) -> int:
    """The bytes of the .npy stream `iter_npy` makes for this shape and dtype (a Content-Length)."""
    return len(npy_header(shape, dtype)) + math.prod(int(d) for d in shape) * np.dtype(dtype).itemsize


def iter_npy(shape: tuple[int, ...] | list[int], dtype, chunks: Iterable[np.ndarray]) -> Iterator[bytes]:
    """A .npy byte stream: the header, then the chunks (rows along axis 0) in C order.

    The chunks must add up to exactly `shape`; otherwise ValueError is raised (in the generator,
    so a streaming response is cut short rather than silently corrupt)."""
    dtype = np.dtype(dtype)
    shape = tuple(int(d) for d in shape)
    yield npy_header(shape, dtype)
    if not shape:
        for chunk in chunks:
            yield np.asarray(chunk, dtype=dtype).reshape(()).tobytes()
            return
        raise ValueError("iter_npy: no data for a 0-d array")
    rows = 0
    for chunk in chunks:
        arr = np.asarray(chunk)
        if arr.shape[1:] != shape[1:] or arr.ndim != len(shape):
            raise ValueError(f"iter_npy: chunk of shape {arr.shape} does not fit array shape {shape}")
        rows += arr.shape[0]
        if rows > shape[0]:
            raise ValueError(f"iter_npy: more than the {shape[0]} rows announced")
        if arr.size:
            yield np.ascontiguousarray(arr, dtype=dtype).tobytes()
    if rows != shape[0]:
        raise ValueError(f"iter_npy: {rows} rows written, {shape[0]} announced")
