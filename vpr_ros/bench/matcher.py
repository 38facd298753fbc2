"""Section (c) of ``vpr-ros bench``: matcher top-k latency and recall against map size.

Synthetic clustered maps (vpr_ros.bench.map_store) are built once per (size, dim, index)
into a cache folder and reused. Each map is probed in a fresh process (bench_probe_matcher):
load, RSS, single-query latency of the map's compressed index (MapStore.search, what the
matcher node runs) and of exact search over the same stored descriptors, and R@1 of both.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict

import numpy as np


def map_dir(cache: Path, n: int, dim: int, seed: int = 0) -> Path:
    return Path(cache) / f'map-{dim}-{n}-s{seed}'


def cached_map(cache: Path, n: int, dim: int, index: str, seed: int = 0,
               log=print) -> Dict:
    """A synthetic map of n x dim places searched with ``index``, built once and reused.

    A cached map with another index is re-indexed (the descriptors are kept). Returns its
    path, build time (data + index, first build) and the latest index build time.
    """
    from vpr_ros.mapstore.store import MapStore
    path = map_dir(cache, n, dim, seed)
    ready = path / 'bench_ready.json'
    if ready.exists():
        info = json.loads(ready.read_text())
        if info['index'] != index:
            log(f'[bench] re-indexing the cached {n}-place map with {index} ...')
            t = time.perf_counter()
            with MapStore.open(path, writable=True, verify_checksums=False) as store:
                store.reindex(index)
                store.save()
            info.update(index=index, index_build_s=round(time.perf_counter() - t, 1))
            ready.write_text(json.dumps(info))
            info['cached'] = 'data'
        else:
            info['cached'] = 'all'
        info['path'] = str(path)
        return info
    info = _build(path, n, dim, index, seed, log)
    ready.write_text(json.dumps(info))
    info.update(path=str(path), cached='no')
    return info


def _build(path: Path, n: int, dim: int, index: str, seed: int, log) -> Dict:
    from vpr_ros.bench.map_store import clustered
    from vpr_ros.mapstore.places import PlaceRecord
    from vpr_ros.mapstore.store import MapStore
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    log(f'[bench] building the {n}-place {dim}-d map ({index}) into {path} ...')
    t = time.perf_counter()
    store = MapStore.create(path, 'synthetic', dim, dtype='float16', index=index)
    for start, x in clustered(n, dim, seed):
        store.add(x, [PlaceRecord(x=float(i % 1000) * 5.0, y=float(i // 1000) * 5.0)
                      for i in range(start, start + len(x))])
    store.save()
    itype = store.index_type
    store.close()
    build_s = round(time.perf_counter() - t, 1)
    log(f'[bench] built in {build_s} s')
    return {'n': n, 'dim': dim, 'index': itype, 'build_s': build_s, 'index_build_s': None}


def probe_map(path: str, queries: int, k: int, exact_queries: int, nprobe: int = 0,
              seed: int = 0, timeout: float = 3600) -> Dict:
    """Run bench_probe_matcher on ``path`` in a new process; its JSON result."""
    cmd = [sys.executable, '-m', 'vpr_ros.bench.probe_matcher', str(path), str(queries),
           str(k), str(exact_queries), str(nprobe), str(seed)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode:
        raise RuntimeError(f'matcher probe failed on {path}: {out.stderr[-2000:]}')
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_matcher(cfg, log=print):
    """Rows of section (c): one per (dim, size) with exact and compressed columns."""
    from vpr_ros.mapstore.index import ivfpq_rerank_for
    rows = []
    for dim in cfg.matcher_dims:
        for n in cfg.map_sizes:
            index = cfg.matcher_index or ivfpq_rerank_for(n, dim)
            info = cached_map(Path(cfg.cache), n, dim, index, log=log)
            res = probe_map(info['path'], cfg.matcher_queries, cfg.top_k, cfg.exact_queries,
                            cfg.nprobe)
            res.update(n=n, dim=dim, index=info['index'], build_s=info['build_s'],
                       index_build_s=info.get('index_build_s'), build_cached=info['cached'],
                       r1_loss=round(res['exact_r1'] - res['r1'], 4))
            log(f'[bench] matcher {n} x {dim}: {json.dumps(res)}')
            rows.append(res)
    return rows


def exact_search(desc: np.ndarray, queries: np.ndarray, k: int, chunk: int = 65536):
    """Exact top-k inner product of queries over a (N,dim) (memmap) matrix, chunk by chunk."""
    q = np.ascontiguousarray(queries, np.float32)
    best_s = np.full((q.shape[0], k), -np.inf, np.float32)
    best_i = np.full((q.shape[0], k), -1, np.int64)
    for start in range(0, desc.shape[0], chunk):
        s = q @ np.asarray(desc[start:start + chunk], np.float32).T
        kk = min(k, s.shape[1])
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], 1)
        cand_i = np.concatenate([best_i, part + start], 1)
        order = np.argsort(-cand_s, axis=1, kind='stable')[:, :k]
        best_s = np.take_along_axis(cand_s, order, 1)
        best_i = np.take_along_axis(cand_i, order, 1)
    return best_s, best_i
