"""faiss indexes over L2-normalised descriptors with inner-product (cosine) scores.

``'Flat'`` is exact and is rebuilt from the descriptor file on load (no index file, no second
copy on disk). Any other faiss factory string (``'HNSW32'``, ``'IVF256,PQ32'``, ``'HNSW32,SQ8'``)
is built with METRIC_INNER_PRODUCT and saved next to the descriptors. ``'auto'`` picks by size.

A type ending in ``',Rerank<R>'`` (e.g. ``'IVF1024,PQ64,Rerank100'``) searches the compressed
index for the top R candidates, then re-scores them exactly with the stored descriptors, read
with pread from the descriptor file (RerankIndex): exact-search recall at
compressed-index speed and memory, without touching (and so counting in RSS) the whole mmap.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import faiss
import numpy as np

from vpr_ros.mapstore.manifest import MapError, read_manifest

FLAT_MAX = 50_000          # up to this many places exact search is fast enough (< ~10 ms)
HNSW_MAX = 100_000         # up to this many HNSW32; beyond: IVF-PQ + exact re-ranking
HNSW_MAX_BYTES = 2 << 30   # HNSW keeps float32 vectors; beyond this use IVF-PQ
KMEANS_ITER = 10           # k-means rounds of IVF/PQ training (faiss default 25)
RERANK = 100               # exact re-ranking depth of the compressed index chosen for big maps
CHUNK = 65536
SMALL_BATCH = 16         # query batches smaller than this search single-threaded


def choose_index(spec: str, n: int, dim: int) -> str:
    """The concrete index string for ``spec`` (``'auto'`` resolved for n places of dim)."""
    if spec != 'auto':
        return spec
    if n <= FLAT_MAX:
        return 'Flat'
    if n <= HNSW_MAX and n * dim * 4 <= HNSW_MAX_BYTES:
        return 'HNSW32'
    return ivfpq_rerank_for(n, dim)


def ivfpq_for(n: int, dim: int) -> str:
    """IVF-PQ sized for n places: ~4 sqrt(n) lists (>= 64), 64 (or fewer) PQ sub-vectors."""
    nlist = max(64, int(2 ** round(math.log2(4 * math.sqrt(max(n, 1))))))
    m = next(m for m in (64, 48, 32, 24, 16, 12, 8, 4, 2, 1) if dim % m == 0)
    return f'IVF{nlist},PQ{m}'


def ivfpq_rerank_for(n: int, dim: int, rerank: int = RERANK) -> str:
    """IVF with ~sqrt(n) lists (cheap to train on CPU) over 4-bit fast-scan PQ codes, whose top
    ``rerank`` are re-scored exactly. 1M x 1280 measured ~1 ms p50 with R@1 equal to exact
    search on the synthetic benchmark (``vpr-ros bench``); nprobe defaults to nlist / 8."""
    nlist = max(64, int(2 ** round(math.log2(math.sqrt(max(n, 1))))))
    m = next(m for m in (64, 48, 32, 24, 16, 8, 4, 2) if dim % m == 0)
    return f'IVF{nlist},PQ{m}x4fs,Rerank{rerank}'


def needs_file(index_type: str) -> bool:
    return index_type != 'Flat'


def new_index(index_type: str, dim: int):
    """An empty faiss index of ``index_type`` (a Rerank suffix is applied by build/read)."""
    index_type = split_rerank(index_type)[0]
    if index_type == 'Flat':
        return faiss.IndexFlatIP(dim)
    try:
        return faiss.index_factory(dim, index_type, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise MapError(f'invalid faiss index string {index_type!r} ({str(exc).splitlines()[0]});'
                       f' use auto, Flat, HNSW32, IVF256,PQ32 or another faiss factory '
                       f'string') from None


def set_search_params(index, ef_search: int = 0, nprobe: int = 0) -> None:
    """Search-time accuracy/speed knobs (0 = default: efSearch 64, nprobe max(16, nlist/16),
    nlist/8 for a re-ranked index whose candidates are cheap fast-scan codes)."""
    share = 16
    if isinstance(index, RerankIndex):
        index, share = index.base, 8
    base = faiss.downcast_index(index)
    if hasattr(base, 'hnsw'):
        base.hnsw.efSearch = int(ef_search) or 64
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = min(ivf.nlist, int(nprobe) or max(16, ivf.nlist // share))


def build_index(index_type: str, descriptors, dim: int, train_max: int = 100_000):
    """A filled index over ``descriptors`` ((N,dim), any float dtype, may be a memmap)."""
    rerank = split_rerank(index_type)[1]
    index = new_index(index_type, dim)
    n = descriptors.shape[0]
    if not index.is_trained:
        if n == 0:
            raise MapError(f'index {index_type!r} needs training data; add places first or '
                           f'use Flat')
        rng = np.random.default_rng(0)
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None:  # CPU-friendly training: ~32 points per list, 10 k-means rounds
            train_max = min(train_max, max(32 * ivf.nlist, 16_384))
            ivf.cp.niter = KMEANS_ITER
            pq = getattr(faiss.downcast_index(index), 'pq', None)
            if pq is not None:
                pq.cp.niter = KMEANS_ITER
        sel = np.sort(rng.choice(n, size=min(n, train_max), replace=False))
        train = np.ascontiguousarray(descriptors[sel], dtype=np.float32)
        need = getattr(faiss.try_extract_index_ivf(index), 'nlist', 1)
        if train.shape[0] < need:
            raise MapError(f'index {index_type!r} needs at least {need} places to train, the '
                           f'map has {n}; use Flat or a smaller IVF')
        index.train(train)
    for start in range(0, n, CHUNK):
        index.add(np.ascontiguousarray(descriptors[start:start + CHUNK], dtype=np.float32))
    if rerank:
        index = RerankIndex(index, rows_for(descriptors), rerank)
    set_search_params(index)
    return index


def search(index, queries: np.ndarray, k: int):
    """(scores float32 (Q,k), ids int64 (Q,k)); -1 ids and -inf scores where fewer than k."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if index.ntotal == 0:
        return (np.full((q.shape[0], k), -np.inf, np.float32),
                np.full((q.shape[0], k), -1, np.int64))
    # Few queries: one OpenMP thread. On the shared 2-core machines a 2-thread Flat search of
    # 10k x 768 measured 80 ms p50 against 1.1 ms single-threaded (threads wait for each other).
    threads = faiss.omp_get_max_threads()
    if q.shape[0] < SMALL_BATCH:
        faiss.omp_set_num_threads(1)
    try:
        scores, ids = index.search(q, k)
    finally:
        faiss.omp_set_num_threads(threads)
    scores = scores.astype(np.float32)
    scores[ids < 0] = -np.inf
    return scores, ids.astype(np.int64)


def write_index(index, path) -> None:
    faiss.write_index(index.base if isinstance(index, RerankIndex) else index, str(path))


def read_index(path, dim: int, n: int):
    """Load an index file; a Rerank type (from the map's manifest) reads its rows by pread."""
    index = faiss.read_index(str(path))
    if index.d != dim or index.ntotal != n:
        raise MapError(f'{path}: index has {index.ntotal} vectors of {index.d}-d, the map has '
                       f'{n} places of {dim}-d (rebuild with reindex)')
    set_search_params(index)
    path = Path(path)
    try:
        m = read_manifest(path.parent)
    except MapError:
        return index
    if m['files'].get('index', {}).get('name') != path.name:
        raise MapError(f'{path.parent}: the map changed while {path.name} was loaded')
    rerank = split_rerank(m['index_type'])[1]
    if not rerank:
        return index
    desc = np.load(path.parent / m['files']['descriptors']['name'], mmap_mode='r')
    index = RerankIndex(index, rows_for(desc), rerank)
    set_search_params(index)
    return index


def split_rerank(index_type: str):
    """('IVF1024,PQ64', 100) for 'IVF1024,PQ64,Rerank100'; (index_type, 0) without a suffix."""
    m = re.fullmatch(r'(.+),Rerank(\d+)', index_type)
    return (m.group(1), int(m.group(2))) if m else (index_type, 0)


class FileRows:
    """Rows of an .npy descriptor matrix read with pread: no mmap pages stay resident, and a
    file truncated on disk gives a MapError (a short read) where a memory map gives SIGBUS.

    The file is handed to the kernel's readahead at open (POSIX_FADV_WILLNEED): re-ranking
    reads ~100 random rows per query, which cost a disk read each when the page cache is cold
    (1M x 1280 map: top-10 p99 5.4 ms cold vs 1.5 ms warm). Page cache is shared and
    reclaimable, not process RSS. ``rows[i:j]``, ``rows[ids]`` and ``shape`` let it stand in
    for the matrix (index building, save).
    """

    def __init__(self, memmap: np.memmap):
        self.path = memmap.filename
        self.fd = os.open(self.path, os.O_RDONLY)  # stays valid if the file is replaced
        self.offset, self.dtype = int(memmap.offset), memmap.dtype
        self.n, self.dim = memmap.shape
        self.shape = (self.n, self.dim)
        self.row_bytes = self.dim * self.dtype.itemsize
        if hasattr(os, 'posix_fadvise'):
            os.posix_fadvise(self.fd, self.offset, self.n * self.row_bytes,
                             os.POSIX_FADV_WILLNEED)

    def _read(self, size: int, pos: int) -> bytes:
        data = os.pread(self.fd, size, pos)
        if len(data) != size:
            raise MapError(f'{self.path}: descriptor file ends at byte {pos + len(data)}, the '
                           f'map needs {self.offset + self.n * self.row_bytes} (truncated on '
                           'disk after it was loaded; restore the file or reload the map)')
        return data

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, np.int64).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= self.n):
            raise IndexError(f'rows {ids.min()}..{ids.max()} outside 0..{self.n - 1}')
        order = np.argsort(ids)
        buf = b''.join(self._read(self.row_bytes, self.offset + int(i) * self.row_bytes)
                       for i in ids[order])
        out = np.empty((ids.size, self.dim), np.float32)
        out[order] = np.frombuffer(buf, self.dtype).reshape(-1, self.dim)
        return out

    def span(self, start: int, stop: int) -> np.ndarray:
        """float32 rows ``start:stop`` in one read."""
        start, stop = max(0, int(start)), min(self.n, int(stop))
        if stop <= start:
            return np.empty((0, self.dim), np.float32)
        buf = self._read((stop - start) * self.row_bytes, self.offset + start * self.row_bytes)
        return np.frombuffer(buf, self.dtype).reshape(-1, self.dim).astype(np.float32)

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.n)
            return self.span(start, stop)[::step] if step != 1 else self.span(start, stop)
        return self(np.asarray(key))

    def __len__(self) -> int:
        return self.n

    def warm(self, chunk: int = 16 << 20) -> float:
        """Read the whole matrix once (into the page cache, not RSS); seconds taken."""
        import time
        t0, end = time.perf_counter(), self.offset + self.n * self.row_bytes
        for pos in range(self.offset, end, chunk):
            os.pread(self.fd, min(chunk, end - pos), pos)
        return time.perf_counter() - t0

    def __del__(self):
        fd = getattr(self, 'fd', None)
        if fd is not None:
            os.close(fd)


def rows_for(descriptors):
    """A row reader over ``descriptors``: pread for a memmap, indexing for an array."""
    if isinstance(descriptors, FileRows):
        return descriptors
    if isinstance(descriptors, np.memmap) and descriptors.filename:
        return FileRows(descriptors)
    arr = np.asarray(descriptors)
    return lambda ids: np.asarray(arr[ids], np.float32)


class RerankIndex:
    """A compressed faiss index whose top ``rerank`` candidates are re-scored exactly."""

    def __init__(self, base, rows, rerank: int):
        self.base, self.rows, self.rerank = base, rows, int(rerank)
        self.n_rows = base.ntotal  # rows readable through ``rows``; later adds kept here
        self._extra = []

    d = property(lambda self: self.base.d)
    ntotal = property(lambda self: self.base.ntotal)
    is_trained = property(lambda self: self.base.is_trained)

    def add(self, x) -> None:
        x = np.ascontiguousarray(x, dtype=np.float32)
        self.base.add(x)
        self._extra.append(x)

    def _vectors(self, ids: np.ndarray) -> np.ndarray:
        out = np.empty((ids.size, self.d), np.float32)
        old = ids < self.n_rows
        if old.any():
            out[old] = self.rows(ids[old])
        if (~old).any():
            out[~old] = np.concatenate(self._extra)[ids[~old] - self.n_rows]
        return out

    def search(self, q: np.ndarray, k: int):
        """Like faiss ``search``: (scores (Q,k), ids (Q,k)), -1 ids where fewer than k."""
        _, cand = self.base.search(q, max(k, self.rerank))
        scores = np.full((q.shape[0], k), -np.inf, np.float32)
        ids = np.full((q.shape[0], k), -1, np.int64)
        for j in range(q.shape[0]):
            c = cand[j][cand[j] >= 0]
            s = self._vectors(c) @ q[j]
            top = np.argsort(-s, kind='stable')[:k]
            scores[j, :top.size], ids[j, :top.size] = s[top], c[top]
        return scores, ids
