"""Metric-pose benchmark on rendered places: SIFT matches with map views -> estimate_metric_pose.

Map views are the database views of consecutive route places (``spacing_m`` apart, the route's
4 degree pitch); each query is a random viewpoint change of the first place (QUERY_VIEW: +-1.5 m
lateral, +-2 m along, +-10 deg yaw, +-0.4 m height, +-3 deg pitch). Run with
``python -m vpr_ros.verification.geometry_bench --places 20``.
"""
from __future__ import annotations

import argparse
import math
import time
from typing import Dict, List

import cv2
import numpy as np

from vpr_ros.verification.metric_pose import estimate_metric_pose, ViewCorrespondences
from vpr_ros.world import plan_route, Renderer, Town
from vpr_ros.world.conditions import QUERY_VIEW


def intrinsics(size=(320, 240), fovy_deg: float = 55.0) -> np.ndarray:
    """Pinhole K of the town renderer (square pixels, pixel centres at integer coordinates)."""
    w, h = size
    f = (h / 2.0) / math.tan(math.radians(fovy_deg) / 2.0)
    return np.array([[f, 0.0, w / 2.0 - 0.5], [0.0, f, h / 2.0 - 0.5], [0.0, 0.0, 1.0]])


def sift_features(img: np.ndarray, sift) -> tuple:
    """Keypoint coordinates (N, 2) and RootSIFT descriptors of an RGB image."""
    kps, desc = sift.detectAndCompute(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), None)
    if desc is None:
        return np.zeros((0, 2)), np.zeros((0, 128), np.float32)
    desc = np.sqrt(desc / np.maximum(desc.sum(1, keepdims=True), 1e-9)).astype(np.float32)
    return np.array([k.pt for k in kps]), desc


def verified_matches(q, m, ratio: float = 0.8, ransac_px: float = 2.0, K=None):
    """Ratio-test matches kept if inliers of a fundamental matrix (essential matrix with K)."""
    if len(q[0]) < 8 or len(m[0]) < 8:
        return np.zeros((0, 2)), np.zeros((0, 2))
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(q[1], m[1], k=2)
    good = [a for a, b in (p for p in pairs if len(p) == 2) if a.distance < ratio * b.distance]
    if len(good) < 8:
        return np.zeros((0, 2)), np.zeros((0, 2))
    qa = q[0][[g.queryIdx for g in good]]
    ma = m[0][[g.trainIdx for g in good]]
    mask = None
    if K is not None:
        try:                  # OpenCV 5.1 asserts (solvePoly) on some point sets
            _, mask = cv2.findEssentialMat(qa, ma, K, cv2.RANSAC, 0.999, ransac_px)
        except cv2.error:
            mask = None
    if mask is None:
        _, mask = cv2.findFundamentalMat(qa, ma, cv2.FM_RANSAC, ransac_px, 0.999)
    keep = mask.ravel() > 0 if mask is not None else np.zeros(len(qa), bool)
    return qa[keep], ma[keep]


def bench_metric_pose(seed: int = 101, places: int = 10, spacing_m: float = 10.0,
                      views: int = 2, size=(320, 240), map_condition: str = 'day',
                      query_condition: str = 'day', nfeatures: int = 1000,
                      essential: bool = False) -> List[Dict]:
    """One row per query: errors (m, deg), method, inliers, sigma and ms per estimate."""
    cv2.setNumThreads(1)
    town = Town.from_seed(seed)
    route = plan_route(town, places + views, spacing_m, seed=seed)
    K = intrinsics(size)
    sift = cv2.SIFT_create(nfeatures=nfeatures)
    rng = np.random.default_rng([seed, 7])
    rows = []
    with Renderer(town, size, 2) as r:
        db = [route.place_pose(i) for i in range(places + views - 1)]
        feats = [sift_features(r.render(p, map_condition), sift) for p in db]
        for i in range(places):
            truth = route.place_pose(i, QUERY_VIEW, rng)
            t0 = time.process_time()
            qf = sift_features(r.render(truth, query_condition, noise_seed=i), sift)
            t1 = time.process_time()
            corr = []
            for p, mf in zip(db[i:i + views], feats[i:i + views]):
                qa, ma = verified_matches(qf, mf, K=K if essential else None)
                corr.append(ViewCorrespondences(qa, ma, np.array([p.x, p.y, p.z]), p.yaw, K,
                                                p.pitch))
            t2 = time.process_time()
            est = estimate_metric_pose(corr, K)
            t3 = time.process_time()
            row = {'place': i, 'matches': [len(c.query_xy) for c in corr],
                   'sift_ms': (t1 - t0) * 1e3, 'match_ms': (t2 - t1) * 1e3,
                   'pose_ms': (t3 - t2) * 1e3, 'method': None}
            if est is not None:
                dyaw = math.atan2(math.sin(est.yaw - truth.yaw), math.cos(est.yaw - truth.yaw))
                row.update(method=est.method, inliers=est.inliers,
                           pos_err=math.hypot(est.x - truth.x, est.y - truth.y),
                           yaw_err=abs(math.degrees(dyaw)),
                           sigma_m=math.sqrt(max(np.linalg.eigvalsh(est.covariance[:2, :2]))),
                           sigma_yaw=math.degrees(math.sqrt(est.covariance[2, 2])))
            rows.append(row)
    return rows


def summary(rows: List[Dict]) -> str:
    """Median / 90th percentile errors, success rate and cost of bench rows."""
    ok = [r for r in rows if r['method']]
    line = f'{len(ok)}/{len(rows)} estimated'
    if ok:
        pe, ye = np.array([r['pos_err'] for r in ok]), np.array([r['yaw_err'] for r in ok])
        line += (f'; position error median {np.median(pe):.2f} m, p90 {np.percentile(pe, 90):.2f}'
                 f' m, within 1 m {np.mean(pe < 1.0):.2f}; yaw error median {np.median(ye):.2f}'
                 f' deg, p90 {np.percentile(ye, 90):.2f} deg; methods '
                 f'{sorted(set(r["method"] for r in ok))}')
    ms = np.array([r['pose_ms'] for r in rows])
    line += (f'; pose CPU ms median {np.median(ms):.1f} max {ms.max():.1f}; SIFT ms '
             f'{np.median([r["sift_ms"] for r in rows]):.1f}, match ms '
             f'{np.median([r["match_ms"] for r in rows]):.1f}')
    return line


def main(argv=None) -> None:
    """Print per-query rows and the summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--seed', type=int, default=101, help='town seed (default 101)')
    ap.add_argument('--places', type=int, default=10, help='queries (default 10)')
    ap.add_argument('--spacing', type=float, default=10.0, help='map view spacing m (default 10)')
    ap.add_argument('--views', type=int, default=2, help='map views per query (default 2)')
    ap.add_argument('--query-condition', default='day', help='query condition (default day)')
    ap.add_argument('--essential', action='store_true',
                    help='verify matches with an essential matrix (known K) instead of F')
    args = ap.parse_args(argv)
    rows = bench_metric_pose(args.seed, args.places, args.spacing, args.views,
                             query_condition=args.query_condition, essential=args.essential)
    for r in rows:
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()})
    print(summary(rows))


if __name__ == '__main__':
    main()
