"""Report sections that keep an evaluation from scoring silent zeros.

* where the ground truth lies against the map (distance of each query to its nearest map
  place): a median beyond ``outside_map_m`` means the queries and the map are not in one
  frame (or not of one town), and is reported as a problem (``--strict`` exits non-zero);
* R@1 within 5 / 10 / 25 m, overall and per condition;
* condition labels for frames without one (a bag: ``--condition`` or the bag's name).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from vpr_ros.evaluation import metrics as mx

WITHIN_M = (5.0, 10.0, 25.0)


def condition_labels(frames, cfg) -> List[str]:
    """Each frame's condition; frames without one get ``cfg.condition`` or the bag's name."""
    default = cfg.condition or (Path(cfg.bag).name if cfg.bag else '')
    return [f.condition or default for f in frames]


def top1_distances(frames) -> np.ndarray:
    """(Q,) metres from each frame's ground truth to its top-1 candidate (NaN: none)."""
    out = np.full(len(frames), np.nan)
    for i, f in enumerate(frames):
        if f.gt is not None and len(f.cand_xy):
            out[i] = float(np.hypot(*(np.asarray(f.cand_xy[0], np.float64) - f.gt)))
    return out


def ground_truth_vs_map(gt_xy, map_xy, cfg) -> Dict:
    """Distances of the ground truth to the nearest map place and what they allow."""
    from vpr_ros.evaluation.frames import nearest_distances
    d = nearest_distances(gt_xy, map_xy)
    fin = d[np.isfinite(d)]
    return {'queries': int(len(d)),
            'nearest_place_m': mx.percentiles(fin, (50, 90)),
            'within_threshold': float((d <= cfg.threshold_m).mean()) if len(d) else None,
            'outside_map_m': cfg.outside_map_m}


def problems(rep: Dict, info: Dict) -> List[str]:
    """Why the recall of ``rep`` does not measure the model (empty when it does)."""
    out = []
    if rep['num_queries'] == 0:
        out.append(f'none of the {rep["num_frames"]} frames has a ground-truth pose (check '
                   f'--pose-topic / --pose-tolerance): recall is not measured')
    cov = rep.get('ground_truth_vs_map')
    med = cov and cov['nearest_place_m']['p50']
    if med is not None and cov['outside_map_m'] and med > cov['outside_map_m']:
        out.append(
            f'the ground truth lies far outside the map: the median distance of the '
            f'{cov["queries"]} queries to their nearest map place is {med:.0f} m (> '
            f'{cov["outside_map_m"]:g} m) and only {100 * cov["within_threshold"]:.0f}% are '
            f'within {rep["threshold_m"]:g} m of one, so recall cannot be high. The queries '
            f'and the map are probably not in one frame or not of one town (map geo '
            f'reference: {info.get("map_geo", "?")}; ground truth: '
            f'{info.get("ground_truth_frame", "?")}); check --pose-topic (bags) and the map\'s '
            f'geo reference (origin, or place lat/lon: rebuild it from a bag with NavSatFix)')
    return out


def section(gt_frames, cfg, info: Dict, map_xy: Optional[np.ndarray], correct) -> Dict:
    """The report keys this module adds (see the module docstring)."""
    labels = condition_labels(gt_frames, cfg)
    dist = top1_distances(gt_frames)
    out = {'r1_within_m': mx.top1_within(dist, WITHIN_M),
           'recall_at_by_condition': mx.grouped_recall(labels, correct, (1, 5, 10), dist,
                                                       WITHIN_M),
           'ground_truth': {k: info[k] for k in ('map_geo', 'pose_topic_choice',
                                                 'ground_truth_frame') if k in info}}
    if map_xy is not None and len(gt_frames):
        out['ground_truth_vs_map'] = ground_truth_vs_map(
            np.array([f.gt for f in gt_frames], np.float64), map_xy, cfg)
    return out


def markdown(rep: Dict) -> List[str]:
    """Report lines: where the ground truth comes from, R@1 within, the map coverage."""
    lines = [f'- {k.replace("_", " ")}: {v}' for k, v in rep.get('ground_truth', {}).items()]
    cov = rep.get('ground_truth_vs_map')
    if cov:
        near = cov['nearest_place_m']
        lines.append(f'- ground truth vs map: nearest place p50 {_m(near["p50"])}, p90 '
                     f'{_m(near["p90"])}; {100 * (cov["within_threshold"] or 0):.0f}% within '
                     f'{rep["threshold_m"]:g} m of a place (the highest reachable recall)')
    rows = [('all', rep.get('r1_within_m'))] + [
        (c, v.get('r1_within_m')) for c, v in rep['recall_at_by_condition'].items()]
    if rows[0][1]:
        keys = list(rows[0][1])
        lines += ['', '| R@1 within | ' + ' | '.join(f'{k} m' for k in keys) + ' |',
                  '|---|' + '---|' * len(keys)]
        lines += [f'| {name} | ' + ' | '.join(f'{r[k]:.3f}' for k in keys) + ' |'
                  for name, r in rows if r]
    return lines


def _m(v) -> str:
    return '-' if v is None else f'{v:.1f} m'
