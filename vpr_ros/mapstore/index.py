"""faiss indexes over L2-normalised descriptors with inner-product (cosine) scores.

``'Flat'`` is exact and is rebuilt from the descriptor file on load (no index file, no second
copy on disk). Any other faiss factory string (``'HNSW32'``, ``'IVF256,PQ32'``, ``'HNSW32,SQ8'``)
is built with METRIC_INNER_PRODUCT and saved next to the descriptors. ``'auto'`` picks by size.
"""
from __future__ import annotations

import math

import faiss
import numpy as np

from vpr_ros.mapstore.manifest import MapError

FLAT_MAX = 50_000          # up to this many places exact search is fast enough (< ~10 ms)
HNSW_MAX_BYTES = 2 << 30   # HNSW keeps float32 vectors; beyond this use IVF-PQ
CHUNK = 65536
SMALL_BATCH = 16         # query batches smaller than this search single-threaded


def choose_index(spec: str, n: int, dim: int) -> str:
    """The concrete index string for ``spec`` (``'auto'`` resolved for n places of dim)."""
    if spec != 'auto':
        return spec
    if n <= FLAT_MAX:
        return 'Flat'
    if n * dim * 4 <= HNSW_MAX_BYTES:
        return 'HNSW32'
    return ivfpq_for(n, dim)


def ivfpq_for(n: int, dim: int) -> str:
    """IVF-PQ sized for n places: ~4 sqrt(n) lists (>= 64), 64 (or fewer) PQ sub-vectors."""
    nlist = max(64, int(2 ** round(math.log2(4 * math.sqrt(max(n, 1))))))
    m = next(m for m in (64, 48, 32, 24, 16, 12, 8, 4, 2, 1) if dim % m == 0)
    return f'IVF{nlist},PQ{m}'


def needs_file(index_type: str) -> bool:
    return index_type != 'Flat'


def new_index(index_type: str, dim: int):
    if index_type == 'Flat':
        return faiss.IndexFlatIP(dim)
    try:
        return faiss.index_factory(dim, index_type, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise MapError(f'invalid faiss index string {index_type!r} ({str(exc).splitlines()[0]});'
                       f' use auto, Flat, HNSW32, IVF256,PQ32 or another faiss factory '
                       f'string') from None


def set_search_params(index, ef_search: int = 0, nprobe: int = 0) -> None:
    """Search-time accuracy/speed knobs (0 = default: efSearch 64, nprobe max(16, nlist/16))."""
    base = faiss.downcast_index(index)
    if hasattr(base, 'hnsw'):
        base.hnsw.efSearch = int(ef_search) or 64
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = min(ivf.nlist, int(nprobe) or max(16, ivf.nlist // 16))


def build_index(index_type: str, descriptors, dim: int, train_max: int = 100_000):
    """A filled index over ``descriptors`` ((N,dim), any float dtype, may be a memmap)."""
    index = new_index(index_type, dim)
    n = descriptors.shape[0]
    if not index.is_trained:
        if n == 0:
            raise MapError(f'index {index_type!r} needs training data; add places first or '
                           f'use Flat')
        rng = np.random.default_rng(0)
        sel = np.sort(rng.choice(n, size=min(n, train_max), replace=False))
        train = np.ascontiguousarray(descriptors[sel], dtype=np.float32)
        need = getattr(faiss.try_extract_index_ivf(index), 'nlist', 1)
        if train.shape[0] < need:
            raise MapError(f'index {index_type!r} needs at least {need} places to train, the '
                           f'map has {n}; use Flat or a smaller IVF')
        index.train(train)
    for start in range(0, n, CHUNK):
        index.add(np.ascontiguousarray(descriptors[start:start + CHUNK], dtype=np.float32))
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
    faiss.write_index(index, str(path))


def read_index(path, dim: int, n: int):
    index = faiss.read_index(str(path))
    if index.d != dim or index.ntotal != n:
        raise MapError(f'{path}: index has {index.ntotal} vectors of {index.d}-d, the map has '
                       f'{n} places of {dim}-d (rebuild with reindex)')
    set_search_params(index)
    return index
