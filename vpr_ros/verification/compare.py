"""Global-only vs + verification vs + metric pose on VG query folders, with per-frame costs.

``compare(maps_and_queries, matcher)`` encodes every query once (the query_encoder's default
network for the map), then steps two Localizers of the same settings: one with ``verify`` off,
one on (and ``metric_pose`` as given). Rows: R@1 (top-1 within ``threshold_m``), R@1 within
5 m, answers more than 100 m off, the published pose within 5 m, the share of frames the
matcher declares localized (its min_confidence) and how many of those priors are more than
100 m off, and the mean / p95 milliseconds of query feature extraction and of verification
(+ metric pose) per frame. Single frames (VG queries are independent images), as
``vpr-ros evaluate`` runs them.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np

from vpr_ros.config import MatcherConfig, QueryEncoderConfig


def _row() -> Dict[str, list]:
    return {'top1_m': [], 'prior_m': [], 'source': [], 'localized': [], 'extract_ms': [],
            'verify_ms': []}


def _summary(r: Dict[str, list], threshold_m: float) -> Dict[str, float]:
    d = np.array(r['top1_m'], np.float64)
    p = np.array(r['prior_m'], np.float64)
    n = max(len(d), 1)
    out = {'queries': len(d), 'R@1': float(np.sum(d <= threshold_m)) / n,
           'R@1_5m': float(np.sum(d <= 5.0)) / n, 'over_100m': float(np.sum(d > 100.0)) / n,
           'pose_5m': float(np.sum(p <= 5.0)) / n, 'pose_1m': float(np.sum(p <= 1.0)) / n,
           'pose_median_m': float(np.median(p)) if len(p) else float('nan'),
           'metric_share': r['source'].count('metric') / n,
           'localized': float(np.mean(r['localized'])) if r['localized'] else 0.0,
           'localized_over_100m': _share_far(p[np.asarray(r['localized'], bool)]),
           'verified_share': (r['source'].count('verified') + r['source'].count('metric')) / n}
    for key in ('extract_ms', 'verify_ms'):
        v = np.array(r[key], np.float64)
        out[key] = float(v.mean()) if len(v) else 0.0
        out[key + '_p95'] = float(np.percentile(v, 95)) if len(v) else 0.0
    return out


def _share_far(prior_m: np.ndarray) -> float:
    """Share of published (localized) priors more than 100 m off: what the localization stack
    is told when the matcher is confident and wrong."""
    return float(np.mean(prior_m > 100.0)) if len(prior_m) else 0.0


def compare(pairs: Sequence[Tuple[str, str]], matcher: MatcherConfig = None,
            threshold_m: float = 25.0, max_frames: int = 0) -> Dict[str, Dict]:
    """{'global': row, 'verified': row, per condition 'verified/<cond>': row} over the (map
    directory, VG queries folder) ``pairs``."""
    from vpr_ros.evaluation import EvalConfig
    from vpr_ros.evaluation.offline import vg_queries
    from vpr_ros.localization.localizer import Localizer
    from vpr_ros.query_pipeline import load_query_encoder
    base = dataclasses.replace(matcher or MatcherConfig(), use_filter=False)
    rows: Dict[str, Dict[str, list]] = {'global': _row(), 'verified': _row()}
    for map_dir, vg in pairs:
        plain = Localizer(dataclasses.replace(base, verify=False)).open(map_dir)
        ver = Localizer(dataclasses.replace(base, verify=True)).open(map_dir)
        if not ver.verifying:
            raise ValueError(f'{map_dir} has no local features ({ver.verify_problem or "built "}'
                             f'with --no-local-features?): rebuild it with vpr-ros build-map')
        enc = load_query_encoder(QueryEncoderConfig(map_path=map_dir, threads=1))
        plain.use_query_network(enc.name)
        ver.use_query_network(enc.name)
        cfg = EvalConfig(map=map_dir, vg=vg, max_frames=max_frames)
        try:
            for q in vg_queries(cfg, plain.store.manifest, {}):
                if q.gt is None:
                    continue
                desc = enc.encode(q.rgb)[0]
                t0 = time.perf_counter()
                local = ver.query_features(q.rgb)
                t_ext = (time.perf_counter() - t0) * 1e3
                for name, loc, lf in (('global', plain, None), ('verified', ver, local)):
                    m = loc.step(desc, q.stamp, local=lf)
                    gt = np.asarray(q.gt, np.float64)
                    keys = [name] + ([f'{name}/{q.condition}'] if q.condition else [])
                    for key in keys:
                        r = rows.setdefault(key, _row())
                        r['top1_m'].append(float(np.linalg.norm(m.positions[0, :2] - gt)))
                        e = m.estimate
                        r['prior_m'].append(float(np.hypot(e.x - gt[0], e.y - gt[1]))
                                            if e is not None else float('inf'))
                        r['source'].append(m.pose_source)
                        r['localized'].append(bool(e is not None and e.localized))
                        if lf is not None:
                            r['extract_ms'].append(t_ext)
                            r['verify_ms'].append(m.verify_ms)
        finally:
            plain.close()
            ver.close()
    return {k: _summary(v, threshold_m) for k, v in rows.items()}


def format_table(results: Dict[str, Dict]) -> str:
    """The comparison as a fixed-width text table."""
    cols = ('queries', 'R@1', 'R@1_5m', 'over_100m', 'pose_5m', 'pose_1m', 'pose_median_m',
            'verified_share', 'metric_share', 'localized', 'localized_over_100m', 'extract_ms',
            'verify_ms', 'verify_ms_p95')
    lines = [f'{"run":<18}' + ''.join(f'{c:>{max(15, len(c) + 1)}}' for c in cols)]
    for name, row in results.items():
        cells: List[str] = []
        for c in cols:
            v = row[c]
            w = max(15, len(c) + 1)
            cells.append(f'{v:>{w}d}' if isinstance(v, int) else f'{v:>{w}.3f}')
        lines.append(f'{name:<18}' + ''.join(cells))
    return '\n'.join(lines)
