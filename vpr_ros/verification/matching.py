"""Putative matches (ratio test, optionally mutual) and their RANSAC inliers for one image pair.

``verify_pair(query, view)`` returns the inlier correspondences between a query's features and
one map image's: nearest neighbours that pass Lowe's ratio test (and are mutual when asked),
then a fundamental-matrix (default) or homography RANSAC. Inputs are the matchable forms of
vpr_ros.verification.features (float rows for SIFT variants, uint8 rows for binary methods).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from vpr_ros.verification.features import BINARY


@dataclasses.dataclass
class PairResult:
    """Inlier correspondences of one (query, map image) pair."""

    query_xy: np.ndarray    # (M, 2) query pixels
    view_xy: np.ndarray     # (M, 2) map image pixels
    putative: int = 0       # matches that passed the ratio test, before RANSAC

    @property
    def inliers(self) -> int:
        """Number of RANSAC inliers."""
        return int(self.query_xy.shape[0])


def _none(putative: int = 0) -> PairResult:
    z = np.zeros((0, 2), np.float32)
    return PairResult(z, z.copy(), putative)


def putative_matches(q: np.ndarray, v: np.ndarray, binary: bool, ratio: float = 0.85,
                     mutual: bool = True):
    """(query indices, view indices) of nearest neighbours passing the ratio test."""
    if len(q) < 2 or len(v) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if binary:
        import cv2
        knn = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(q, v, k=2)
        pairs = [(a.queryIdx, a.trainIdx) for a, b in (r for r in knn if len(r) == 2)
                 if a.distance < ratio * b.distance]
        if not pairs:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        qi, vi = (np.array(x, np.int64) for x in zip(*pairs))
        if mutual:
            back = {m.queryIdx: m.trainIdx for m in cv2.BFMatcher(cv2.NORM_HAMMING).match(v, q)}
            keep = np.array([back.get(b) == a for a, b in zip(qi, vi)], bool)
            qi, vi = qi[keep], vi[keep]
        return qi, vi
    sim = _similarity(q, v)             # unit rows: squared distance = 2 - 2 * similarity
    rows = np.arange(len(q))
    best = np.argmax(sim, axis=1)
    back = np.argmax(sim, axis=0)[best] if mutual else None
    s1 = sim[rows, best].copy()
    sim[rows, best] = -np.inf
    s2 = sim.max(axis=1)
    d1, d2nd = np.maximum(2.0 - 2.0 * s1, 0.0), np.maximum(2.0 - 2.0 * s2, 0.0)
    ok = d1 < (ratio * ratio) * d2nd  # ratio on distances = ratio^2 on squared distances
    if mutual:
        ok &= back == rows
    return rows[ok], best[ok]


def _similarity(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(len(q), len(v)) float32 dot products. OpenCV's GEMM, not numpy's: numpy hands a
    product this small to a multi-threaded BLAS that burns 10-20x the CPU time of one core."""
    import cv2
    q = np.ascontiguousarray(q, np.float32)
    v = np.ascontiguousarray(v, np.float32)
    return cv2.gemm(q, v, 1.0, None, 0.0, flags=cv2.GEMM_2_T)


def verify_pair(query_xy: np.ndarray, query_desc: np.ndarray, view_xy: np.ndarray,
                view_desc: np.ndarray, method: str = 'rootsift', model: str = 'fundamental',
                ratio: float = 0.85, mutual: bool = True, threshold_px: float = 2.0,
                min_putative: int = 8, max_iters: int = 500, query_K=None,
                view_K=None) -> PairResult:
    """RANSAC inliers between a query and one map image (``model``: essential, with the two
    images' intrinsics ``query_K`` / ``view_K`` (3, 3); fundamental; or homography)."""
    import cv2
    qi, vi = putative_matches(query_desc, view_desc, method in BINARY, ratio, mutual)
    n = len(qi)
    if n < min_putative:
        return _none(n)
    p, r = query_xy[qi].astype(np.float32), view_xy[vi].astype(np.float32)
    if model not in ('essential', 'fundamental', 'homography'):
        raise ValueError(f'unknown geometric model {model!r}; use fundamental or homography')
    try:  # OpenCV 5.1's USAC asserts (!model.empty()) on some degenerate point sets
        if model == 'essential':
            mask = _essential_inliers(p, r, query_K, view_K, threshold_px, max_iters)
        elif model == 'fundamental':
            _, mask = cv2.findFundamentalMat(p, r, cv2.USAC_MAGSAC, threshold_px, 0.999,
                                             max_iters)
        else:
            _, mask = cv2.findHomography(p, r, cv2.USAC_MAGSAC, 2.0 * threshold_px,
                                         maxIters=max_iters, confidence=0.999)
    except cv2.error:
        mask = None
    if mask is None:
        return _none(n)
    keep = mask.ravel().astype(bool)
    return PairResult(p[keep], r[keep], n)


def _normalised(xy: np.ndarray, K: np.ndarray) -> np.ndarray:
    K = np.asarray(K, np.float64)
    return np.stack([(xy[:, 0] - K[0, 2]) / K[0, 0], (xy[:, 1] - K[1, 2]) / K[1, 1]], axis=1)


def _essential_inliers(p, r, query_K, view_K, threshold_px, max_iters):
    """Inlier mask of an essential matrix between calibrated rays of the two images."""
    import cv2
    if query_K is None or view_K is None:
        raise ValueError('the essential model needs the intrinsics of both images')
    f = 0.5 * (float(query_K[0][0]) + float(view_K[0][0]))
    _, mask = cv2.findEssentialMat(_normalised(p, query_K), _normalised(r, view_K), np.eye(3),
                                   cv2.USAC_MAGSAC, 0.999, threshold_px / f, max_iters)
    return mask
