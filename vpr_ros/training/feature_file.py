"""A ``.npy`` feature matrix on disk, written batch by batch and read row by row.

Training sets such as GSV-Cities (~530k images) do not fit in memory as gallery features at
the widths of the papers' models, so the gallery-feature cache is filled in place on disk
(``NpyRowWriter``: positioned writes, resumable) and training reads the rows of each batch
(``NpyRows``: positioned reads, no mapping kept), so the memory used does not grow with the
number of images. ``np.load(path, mmap_mode='r')`` opens the same files as a memmap.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Tuple

import numpy as np


def create_npy(path, shape: Tuple[int, int], dtype=np.float32) -> int:
    """Create (or truncate) a ``.npy`` of ``shape`` (sparse: nothing written yet); returns
    the byte offset of row 0."""
    arr = np.lib.format.open_memmap(str(path), mode='w+', dtype=dtype, shape=tuple(shape))
    offset = int(arr.offset)
    del arr
    return offset


def npy_layout(path) -> Tuple[Tuple[int, ...], np.dtype, int]:
    """(shape, dtype, offset of row 0) of a C-ordered ``.npy`` file, without reading its data."""
    with open(path, 'rb') as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(f)
        offset = f.tell()
    if fortran:
        raise ValueError(f'{path}: Fortran-ordered .npy cannot be read by rows')
    return tuple(shape), np.dtype(dtype), offset


class NpyRowWriter:
    """Writes row blocks of an existing ``.npy`` (created by create_npy) at their index."""

    def __init__(self, path):
        self.path = Path(path)
        self.shape, self.dtype, self.offset = npy_layout(self.path)
        self._fd = os.open(self.path, os.O_RDWR)

    def write(self, start: int, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.ndim != 2 or rows.shape[1] != self.shape[1] or \
                start < 0 or start + len(rows) > self.shape[0]:
            raise ValueError(f'rows {rows.shape} at {start} do not fit {self.shape}')
        row_bytes = self.shape[1] * self.dtype.itemsize
        os.pwrite(self._fd, rows.tobytes(), self.offset + start * row_bytes)

    def flush(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> 'NpyRowWriter':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class NpyRows:
    """Read-only rows of a 2-D ``.npy``: ``rows[idx]`` (int array) reads just those rows with
    positioned reads; ``len``, ``shape`` and ``dtype`` as an array's. Picklable (DataLoader
    workers reopen the file)."""

    def __init__(self, path):
        self.path = str(path)
        self.shape, self.dtype, self.offset = npy_layout(self.path)
        self._fd = -1

    def __len__(self) -> int:
        return int(self.shape[0])

    def __getstate__(self):
        return {'path': self.path, 'shape': self.shape, 'dtype': self.dtype,
                'offset': self.offset, '_fd': -1}

    def __getitem__(self, idx) -> np.ndarray:
        if self._fd < 0:
            self._fd = os.open(self.path, os.O_RDONLY)
        idx = np.arange(len(self))[idx] if isinstance(idx, slice) else np.asarray(idx)
        one = idx.ndim == 0
        idx = np.atleast_1d(idx).astype(np.int64)
        idx = np.where(idx < 0, idx + len(self), idx)
        row_bytes = self.shape[1] * self.dtype.itemsize
        out = np.empty((len(idx), self.shape[1]), dtype=self.dtype)
        for j, i in enumerate(idx.tolist()):
            buf = os.pread(self._fd, row_bytes, self.offset + i * row_bytes)
            out[j] = np.frombuffer(buf, dtype=self.dtype)
        return out[0] if one else out

    def __del__(self):
        if getattr(self, '_fd', -1) >= 0:
            os.close(self._fd)
