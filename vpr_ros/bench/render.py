"""Render benchmark: ms per frame per condition on a route through a town."""
from __future__ import annotations

import time
from typing import Dict, List, Sequence, Tuple

import numpy as np

from vpr_ros.world.conditions import CONDITIONS, QUERY_VIEW
from vpr_ros.world.occluders import random_occluders
from vpr_ros.world.render import Renderer
from vpr_ros.world.routes import plan_route
from vpr_ros.world.town import Town


def bench_render(seed: int = 0, size: Tuple[int, int] = (320, 240), supersample: int = 2,
                 conditions: Sequence[str] = tuple(CONDITIONS), frames: int = 10,
                 occluders: bool = True) -> List[Dict[str, float]]:
    """Render ``frames`` route views per condition; one row per condition (after one warm-up).

    Rows hold condition, ms_mean, ms_median, ms_max, fps (wall clock), cpu_ms (CPU time of all
    this process's threads per frame: comparable on a shared machine), plus the context start
    time and the triangle count of the static town mesh.
    """
    t0 = time.perf_counter()
    town = Town.from_seed(seed)
    route = plan_route(town, frames, 10.0, seed=seed)
    rows = []
    with Renderer(town, size, supersample) as r:
        setup_ms = (time.perf_counter() - t0) * 1000
        poses = route.poses(QUERY_VIEW, seed)
        for cond in conditions:
            rng = np.random.default_rng([seed, 3])
            occ = [random_occluders(town, p, rng) if occluders else None for p in poses]
            r.render(poses[0], cond, occ[0])
            ms = []
            cpu = time.process_time()
            for p, o in zip(poses, occ):
                t = time.perf_counter()
                r.render(p, cond, o)
                ms.append((time.perf_counter() - t) * 1000)
            cpu_ms = (time.process_time() - cpu) * 1000 / len(poses)
            ms = np.array(ms)
            rows.append({'condition': cond, 'ms_mean': float(ms.mean()),
                         'ms_median': float(np.median(ms)), 'ms_max': float(ms.max()),
                         'fps': float(1000.0 / ms.mean()), 'cpu_ms': cpu_ms,
                         'setup_ms': setup_ms,
                         'triangles': r.triangles})
    return rows


def format_table(rows: List[Dict[str, float]], size, supersample: int) -> str:
    """A plain-text table of bench_render rows."""
    head = (f'render benchmark {size[0]}x{size[1]}, supersample {supersample}, '
            f'{rows[0]["triangles"] if rows else 0} static triangles, '
            f'setup {rows[0]["setup_ms"] if rows else 0:.0f} ms')
    lines = [head, f'{"condition":<10} {"ms/frame":>9} {"median":>8} {"max":>8} {"frames/s":>9} '
                   f'{"cpu ms":>7}']
    for r in rows:
        lines.append(f'{r["condition"]:<10} {r["ms_mean"]:9.1f} {r["ms_median"]:8.1f} '
                     f'{r["ms_max"]:8.1f} {r["fps"]:9.1f} {r["cpu_ms"]:7.1f}')
    return '\n'.join(lines)
