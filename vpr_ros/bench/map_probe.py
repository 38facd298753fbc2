"""Fresh-process probe for bench-map: open a map, measure load time, RSS and query latency.

``python -m vpr_ros.bench.map_probe MAPDIR QUERIES.npy OUT_IDS.npy K`` prints JSON.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np


def probe(map_dir: str, queries_path: str, out_ids: str, k: int) -> dict:
    import psutil
    from vpr_ros.mapstore.store import MapStore
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    t = time.perf_counter()
    store = MapStore.open(map_dir)
    load_s = time.perf_counter() - t
    rss_load = proc.memory_info().rss
    queries = np.load(queries_path, allow_pickle=False)
    store.search(queries[:1], k)  # warm-up
    lat, ids = [], []
    for q in queries:
        t = time.perf_counter()
        _, i = store.search(q[None], k)
        lat.append((time.perf_counter() - t) * 1e3)
        ids.append(i[0])
    np.save(out_ids, np.stack(ids))
    t = time.perf_counter()
    MapStore.open(map_dir, verify_checksums=False).close()
    return {'load_s': round(load_s, 4),
            'reload_no_checksum_s': round(time.perf_counter() - t, 4),
            'rss_before_mb': round(rss0 / 2**20, 1),
            'rss_after_load_mb': round(rss_load / 2**20, 1),
            'rss_after_queries_mb': round(proc.memory_info().rss / 2**20, 1),
            'latency_p50_ms': round(float(np.percentile(lat, 50)), 3),
            'latency_p99_ms': round(float(np.percentile(lat, 99)), 3),
            'index_type': store.index_type}


if __name__ == '__main__':
    print(json.dumps(probe(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))))
