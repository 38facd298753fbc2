"""Evaluation metrics on plain arrays: Recall@N, error percentiles, precision-recall.

Protocol: a query is correct at N if one of its top-N retrievals lies within ``threshold_m``
(and, optionally, within ``yaw_threshold_deg`` of its heading). Queries without an answer count
as wrong; queries without ground truth are left out by the caller.
"""
from __future__ import annotations

import math
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np


def angle_diff(a, b) -> np.ndarray:
    """Absolute difference of angles (radians), wrapped to [0, pi]."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return np.abs(np.arctan2(np.sin(d), np.cos(d)))


def correct_matrix(gt_xy, cand_xy, threshold_m: float, gt_yaw=None, cand_yaw=None,
                   yaw_threshold_deg: Optional[float] = None) -> np.ndarray:
    """(Q, K) bool: candidate k of query q is correct. ``cand_xy`` (Q, K, 2) may hold NaN rows
    for missing candidates (never correct). A NaN ``gt_yaw`` skips the yaw test of that query."""
    gt = np.asarray(gt_xy, np.float64).reshape(-1, 1, 2)
    cand = np.asarray(cand_xy, np.float64)
    if gt.shape[0] == 0:
        return np.zeros((0, cand.shape[1] if cand.ndim == 3 else 0), bool)
    cand = cand.reshape(gt.shape[0], -1, 2)
    dist = np.linalg.norm(cand - gt, axis=2)
    ok = np.nan_to_num(dist, nan=np.inf) <= threshold_m
    if yaw_threshold_deg is not None and gt_yaw is not None:
        gy = np.asarray(gt_yaw, np.float64).reshape(-1, 1)
        dy = angle_diff(np.asarray(cand_yaw, np.float64).reshape(ok.shape), gy)
        ok &= np.isnan(gy) | (dy <= math.radians(yaw_threshold_deg))
    return ok


def search_correct(q_desc, db_desc, q_xy, db_xy, threshold_m: float = 25.0,
                   k: int = 10) -> np.ndarray:
    """(Q, min(k, N)) bool correct matrix of an exact inner-product search of the query
    descriptors in the database's: the one retrieval + ground-truth step behind every recall
    (evaluation, training reports, the world's difficulty check)."""
    import faiss
    db = np.ascontiguousarray(db_desc, dtype=np.float32)
    index = faiss.IndexFlatIP(db.shape[1])
    index.add(db)
    kmax = min(int(k), len(db))
    _, idx = index.search(np.ascontiguousarray(q_desc, dtype=np.float32), kmax)
    return correct_matrix(q_xy, np.asarray(db_xy, np.float64)[idx], threshold_m)


def recall_at(correct: np.ndarray, ns: Iterable[int] = (1, 5, 10)) -> Dict[str, float]:
    """{"N": fraction of queries with a correct candidate among their first N}."""
    c = np.asarray(correct, bool)
    q = c.shape[0]
    return {str(n): (float(c[:, :n].any(axis=1).sum()) / q if q else 0.0) for n in ns}


def percentiles(values, ps: Sequence[int] = (50, 90, 99)) -> Dict[str, Optional[float]]:
    """{"p50": ..., ...} of the finite values (linear interpolation); None when empty."""
    v = np.asarray(list(values), np.float64)
    v = v[np.isfinite(v)]
    return {f'p{p}': (float(np.percentile(v, p)) if v.size else None) for p in ps}


def precision_recall(confidence, correct):
    """Precision and recall of "top-1 is correct" when accepting confidence >= t, for every
    distinct t (descending). Recall is over all correct queries. Returns (precision, recall,
    thresholds) arrays; ties in confidence are accepted together."""
    conf = np.asarray(confidence, np.float64)
    pos = np.asarray(correct, bool)
    keep = np.isfinite(conf)
    conf, pos = conf[keep], pos[keep]
    if conf.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    order = np.argsort(-conf, kind='stable')
    conf, pos = conf[order], pos[order]
    last = np.r_[np.flatnonzero(np.diff(conf) != 0), conf.size - 1]  # end of each tie group
    tp = np.cumsum(pos)[last]
    accepted = last + 1
    total = max(int(pos.sum()), 1)
    return tp / accepted, tp / total, conf[last]


def average_precision(confidence, correct) -> float:
    """Sum over thresholds of precision x recall increase (step interpolation, as sklearn)."""
    p, r, _ = precision_recall(confidence, correct)
    if p.size == 0:
        return float('nan')
    return float(np.sum(np.diff(np.r_[0.0, r]) * p))


def pr_auc(confidence, correct) -> float:
    """Trapezoidal area under the PR curve, starting at (recall 0, first precision)."""
    p, r, _ = precision_recall(confidence, correct)
    if p.size == 0:
        return float('nan')
    r, p = np.r_[0.0, r], np.r_[p[0], p]
    return float(np.sum(np.diff(r) * (p[1:] + p[:-1]) / 2.0))


def operating_point(confidence, correct, threshold: float) -> Dict[str, float]:
    """Precision / recall / accepted fraction when accepting confidence >= ``threshold``."""
    conf = np.asarray(confidence, np.float64)
    pos = np.asarray(correct, bool)
    acc = np.nan_to_num(conf, nan=-np.inf) >= threshold
    n_acc, tp = int(acc.sum()), int((acc & pos).sum())
    return {'threshold': float(threshold),
            'precision': tp / n_acc if n_acc else None,
            'recall': tp / int(pos.sum()) if pos.sum() else None,
            'accepted_fraction': n_acc / conf.size if conf.size else None,
            'accepted': n_acc}


def top1_within(top1_dist, radii: Iterable[float] = (5, 10, 25)) -> Dict[str, float]:
    """{"r": fraction of queries whose top-1 lies within r metres} (NaN distance: wrong)."""
    d = np.nan_to_num(np.asarray(top1_dist, np.float64), nan=np.inf)
    return {f'{r:g}': (float((d <= r).mean()) if d.size else 0.0) for r in radii}


def grouped_recall(conditions: List[str], correct: np.ndarray,
                   ns: Iterable[int] = (1, 5, 10), top1_dist=None,
                   radii: Iterable[float] = (5, 10, 25)) -> Dict[str, Dict]:
    """Recall@N (and, given the top-1 distances, R@1 within ``radii`` metres) per condition
    label; empty labels are skipped."""
    out = {}
    labels = np.asarray(conditions, dtype=object)
    for cond in sorted({c for c in conditions if c}):
        sel = labels == cond
        out[cond] = {'num_queries': int(sel.sum()), 'recall_at': recall_at(correct[sel], ns)}
        if top1_dist is not None:
            out[cond]['r1_within_m'] = top1_within(np.asarray(top1_dist)[sel], radii)
    return out
