"""Per-frame cost of verification: query feature extraction, matching + RANSAC of the top-k,
and the metric pose, for top-k 3, 5 and 10 at the map's image size and 5, 10 at twice it."""
from __future__ import annotations

import dataclasses
import time
from typing import Dict, List, Tuple

import numpy as np

from vpr_ros.config import MatcherConfig, QueryEncoderConfig


def cost_table(pair: Tuple[str, str], matcher: MatcherConfig = None,
               frames: int = 20) -> List[Dict]:
    """Rows {size, top_k, extract_ms, verify_ms, total_ms (mean), total_p95_ms, cpu_ms} timed
    on the first ``frames`` queries of ``pair`` (map directory, VG queries folder). cpu_ms is
    the process CPU time of extraction + search + verification (+ metric pose) per frame: on
    a shared machine it stays near the one-core figure while wall times grow."""
    import cv2
    from vpr_ros.evaluation import EvalConfig
    from vpr_ros.evaluation.offline import vg_queries
    from vpr_ros.localization.localizer import Localizer
    from vpr_ros.query_pipeline import load_query_encoder
    map_dir, vg = pair
    base = dataclasses.replace(matcher or MatcherConfig(), use_filter=False, verify=True)
    enc = load_query_encoder(QueryEncoderConfig(map_path=map_dir, threads=1))
    probe = Localizer(base).open(map_dir)
    queries = []
    for q in vg_queries(EvalConfig(map=map_dir, vg=vg, max_frames=frames), probe.store.manifest,
                        {}):
        queries.append((q.rgb, enc.encode(q.rgb)[0], q.stamp))
    probe.close()
    rows = []
    for scale, k in ((1, 3), (1, 5), (1, 10), (2, 5), (2, 10)):
        loc = Localizer(dataclasses.replace(base, verify_top_k=k)).open(map_dir)
        loc.use_query_network(enc.name)
        ext, ver, cpu = [], [], []
        for rgb, desc, stamp in queries:
            img = rgb if scale == 1 else cv2.resize(rgb, None, fx=scale, fy=scale)
            c0, t0 = time.process_time(), time.perf_counter()
            local = loc.query_features(img)
            ext.append((time.perf_counter() - t0) * 1e3)
            m = loc.step(desc, stamp, local=local)
            cpu.append((time.process_time() - c0) * 1e3)
            ver.append(m.verify_ms)
        loc.close()
        h, w = queries[0][0].shape[:2] if queries else (0, 0)
        tot = np.array(ext) + np.array(ver)
        rows.append({'size': f'{w * scale}x{h * scale}', 'top_k': k,
                     'extract_ms': float(np.mean(ext)), 'verify_ms': float(np.mean(ver)),
                     'total_ms': float(tot.mean()),
                     'total_p95_ms': float(np.percentile(tot, 95)),
                     'cpu_ms': float(np.mean(cpu)), 'frames': len(tot)})
    return rows


def format_cost(rows: List[Dict]) -> str:
    """The cost rows as a text table."""
    lines = [f'{"size":<10}{"top_k":>6}{"extract ms":>12}{"verify ms":>11}{"total ms":>10}'
             f'{"p95 ms":>9}{"cpu ms":>8}{"frames":>8}']
    for r in rows:
        lines.append(f'{r["size"]:<10}{r["top_k"]:>6}{r["extract_ms"]:>12.1f}'
                     f'{r["verify_ms"]:>11.1f}{r["total_ms"]:>10.1f}{r["total_p95_ms"]:>9.1f}'
                     f'{r["cpu_ms"]:>8.1f}{r["frames"]:>8}')
    return '\n'.join(lines)
