"""Fresh-process matcher probe of ``vpr-ros bench`` (prints one JSON line).

``python -m vpr_ros.bench.probe_matcher MAP QUERIES K EXACT_QUERIES NPROBE SEED``: opens the map
like the matcher node (MapStore.open), records RSS after load and after the queries, times
single-query top-K search of the map's index, then exact search over the same descriptors.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np


def _pct(lat, p) -> float:
    return round(float(np.percentile(lat, p)), 3) if len(lat) else 0.0


def _queries(store, num: int, seed: int):
    """bench_store.make_queries, reading the source rows with pread: touching the memmap
    would map (and count in RSS) the kernel's read-ahead around every row."""
    import math
    from vpr_ros.bench.map_store import QUERY_NOISE
    from vpr_ros.mapstore.index import rows_for
    rng = np.random.default_rng(seed + 1)
    src = np.sort(rng.choice(store.num_places, size=min(num, store.num_places), replace=False))
    q = rows_for(store._v.descriptors)(src)
    q += math.sqrt(QUERY_NOISE / store.dim) * rng.standard_normal(q.shape, dtype=np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True), src


def _exact_index(desc, q, k, max_bytes: int = 6 << 30):
    """(float32 IndexFlatIP over desc or None if too big, exact top-k ids of q)."""
    import faiss
    from vpr_ros.bench.matcher import exact_search
    if desc.shape[0] * desc.shape[1] * 4 > max_bytes:
        return None, exact_search(desc, q, k)[1]
    flat = faiss.IndexFlatIP(desc.shape[1])
    for start in range(0, desc.shape[0], 65536):
        flat.add(np.ascontiguousarray(desc[start:start + 65536], np.float32))
    return flat, flat.search(np.ascontiguousarray(q, np.float32), k)[1]


def probe(path: str, queries: int, k: int, exact_queries: int, nprobe: int = 0,
          seed: int = 0) -> dict:
    """Load time, RSS, latency p50/p99 and R@1 of the map's index and of exact search."""
    import faiss
    import psutil
    from vpr_ros.bench.matcher import exact_search
    from vpr_ros.mapstore.index import search
    from vpr_ros.mapstore.store import MapStore
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    t = time.perf_counter()
    store = MapStore.open(path, verify_checksums=False)
    load_s = time.perf_counter() - t
    rss_load = proc.memory_info().rss
    if nprobe:
        store.set_search_params(nprobe=nprobe)
    ivf = faiss.try_extract_index_ivf(getattr(store._index, 'base', store._index))
    # a serving matcher has its re-rank rows in the page cache (FileRows prefetches them at
    # open); wait for that here instead of timing the first queries against a cold disk
    warm = getattr(getattr(store._index, 'rows', None), 'warm', None)
    warm_s = warm() if warm is not None else 0.0
    q, src = _queries(store, queries, seed)
    for x in q[:5]:
        store.search(x[None], k)  # warm-up
    lat, ids = [], []
    for x in q:
        t = time.perf_counter()
        _, i = store.search(x[None], k)
        lat.append((time.perf_counter() - t) * 1e3)
        ids.append(i[0])
    ids = np.stack(ids)
    rss_q = proc.memory_info().rss
    hub = _hubness_latency(store, q, k, seed)
    rss_hub = proc.memory_info().rss
    exact, ex_ids = _exact_index(store._v.descriptors, q, k)
    ex_lat = []
    for x in q[:exact_queries]:
        t = time.perf_counter()
        search(exact, x[None], k) if exact is not None else exact_search(
            store._v.descriptors, x[None], k)
        ex_lat.append((time.perf_counter() - t) * 1e3)
    return {'load_s': round(load_s, 3), 'page_cache_warm_s': round(warm_s, 3),
            'rss_before_mb': round(rss0 / 2**20, 1),
            'rss_after_load_mb': round(rss_load / 2**20, 1),
            'rss_after_queries_mb': round(rss_q / 2**20, 1),
            'rss_after_hubness_mb': round(rss_hub / 2**20, 1),
            'queries': int(len(q)), 'nprobe': int(getattr(ivf, 'nprobe', 0)),
            'p50_ms': _pct(lat, 50), 'p95_ms': _pct(lat, 95), 'p99_ms': _pct(lat, 99),
            'r1': float(np.mean(ids[:, 0] == src)),
            'r10': float(np.mean((ids == src[:, None]).any(axis=1))),
            'exact_p50_ms': _pct(ex_lat, 50), 'exact_p99_ms': _pct(ex_lat, 99),
            'exact_queries': len(ex_lat),
            'exact_method': 'float32 IndexFlatIP' if exact is not None else 'chunked fp16 scan',
            'exact_r1': float(np.mean(ex_ids[:, 0] == src)),
            'agree_top1': float(np.mean(ex_ids[:, 0] == ids[:, 0])), **hub}


def _hubness_latency(store, q, k: int, seed: int, refs: int = 1440, candidates: int = 50):
    """The matcher's search with the hubness correction (vpr_ros.hubness.search_map) on the
    same queries: the first pass meets each candidate's bias for the first time, the second
    finds them all computed (a robot revisiting places); random unit reference descriptors."""
    from vpr_ros.hubness import HubnessCorrector, search_map
    ref = np.random.default_rng(seed + 2).standard_normal((refs, store.dim), dtype=np.float32)
    hub = HubnessCorrector(ref / np.linalg.norm(ref, axis=1, keepdims=True), 10, candidates)
    out = {'hubness_refs': refs, 'hubness_candidates': candidates}
    for name in ('hubness_first', 'hubness_cached'):
        lat = []
        for x in q:
            t = time.perf_counter()
            search_map(store, x, k, hub)
            lat.append((time.perf_counter() - t) * 1e3)
        out[f'{name}_p50_ms'], out[f'{name}_p99_ms'] = _pct(lat, 50), _pct(lat, 99)
    return out


if __name__ == '__main__':
    a = sys.argv[1:]
    print(json.dumps(probe(a[0], int(a[1]), int(a[2]), int(a[3]), int(a[4]), int(a[5]))))
