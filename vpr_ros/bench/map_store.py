"""Synthetic map-store benchmark: build+save, fresh-process load/RSS/latency, recall loss.

Descriptors are clustered (``n // 10`` place centres, ~10 views each, cosine ~0.95 to the
centre, ~0.91 between views); queries are database vectors plus noise (cosine ~0.89 to their
source, ~0.81 to its sibling views), so each query has one true source and small index errors
show up as R@1/R@10 loss against exact search.
"""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict

import numpy as np

SPREAD = 0.1         # squared norm of a view's offset from its place centre
QUERY_NOISE = 0.25   # squared norm of a query's offset from its source view


def clustered(n: int, dim: int, seed: int, chunk: int = 50_000):
    """Yield (start, float32 chunk) of n unit descriptors grouped around n//10 centres."""
    ncent = max(1, n // 10)
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((ncent, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    sigma = math.sqrt(SPREAD / dim)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        x = centres[np.arange(start, start + m) % ncent] + sigma * rng.standard_normal(
            (m, dim), dtype=np.float32)
        yield start, x / np.linalg.norm(x, axis=1, keepdims=True)


def make_queries(store, num: int, seed: int):
    rng = np.random.default_rng(seed + 1)
    src = np.sort(rng.choice(store.num_places, size=min(num, store.num_places), replace=False))
    q = store.descriptors_of(src)
    q += math.sqrt(QUERY_NOISE / store.dim) * rng.standard_normal(q.shape, dtype=np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True), src


def bench_config(n: int, dim: int, index: str, work: Path, dtype: str = 'float16',
                 queries: int = 200, k: int = 10, seed: int = 0) -> Dict:
    """Build a map of n synthetic descriptors with ``index``, then probe it in a new process."""
    from vpr_ros.mapstore.places import PlaceRecord
    from vpr_ros.mapstore.store import MapStore
    path = work / f'map-{dim}-{n}-{index.replace(",", "_")}'
    shutil.rmtree(path, ignore_errors=True)
    t = time.perf_counter()
    store = MapStore.create(path, 'synthetic', dim, dtype=dtype, index=index)
    for start, x in clustered(n, dim, seed):
        store.add(x, [PlaceRecord(x=float(i), y=0.0) for i in range(start, start + len(x))])
    store.save()
    build_s = time.perf_counter() - t
    q, src = make_queries(store, queries, seed)
    store.close()
    qpath, ipath = work / 'queries.npy', work / 'ids.npy'
    np.save(qpath, q)
    out = subprocess.run([sys.executable, '-m', 'vpr_ros.bench.map_probe', str(path),
                          str(qpath), str(ipath), str(k)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f'probe failed: {out.stderr[-2000:]}')
    res = json.loads(out.stdout.strip().splitlines()[-1])
    ids = np.load(ipath)
    res.update(n=n, dim=dim, dtype=dtype, index=index, build_save_s=round(build_s, 2),
               disk_mb=round(sum(p.stat().st_size for p in path.iterdir()) / 2**20, 1),
               r1=float(np.mean(ids[:, 0] == src)),
               r10=float(np.mean((ids == src[:, None]).any(axis=1))))
    shutil.rmtree(path, ignore_errors=True)
    return res
