"""Geometric verification of a frame's top-k places and their re-ranking.

Each of the first ``verify_top_k`` candidates with stored local features is matched against the
query's (ratio test, mutual nearest neighbours, fundamental-matrix RANSAC). A candidate with at
least ``min_inliers`` inliers gains ``inlier_weight * min(inliers, inlier_saturation) /
inlier_saturation`` on its similarity; candidates are then sorted by the combined score. The
combined scores are what the tracker turns into the confidence, so the inlier count feeds it.
Verification stops once the best candidate so far has the full bonus and no later one could
overtake it with the full bonus (lossless; after METRIC_VIEWS candidates when the metric pose
wants views). The metric pose runs only for a VERIFIED best candidate, with the calibrated
covariance below.
Measured on held-out towns: docs and ``vpr-ros bench-verify``.
"""
from __future__ import annotations

import dataclasses
import time
from typing import List, Optional

import numpy as np

from vpr_ros.verification.features import as_matchable, FeatureExtractor, LocalFeatures
from vpr_ros.verification.matching import verify_pair


METRIC_VIEWS = 3  # verified views given to the metric pose
# The bundle's covariance is optimistic on real matches (errors correlated across points, a
# few wrong views): on towns 2001-2004 (28 estimates with gates open) the median squared
# Mahalanobis error was 20.8 against 1.39 for a calibrated 2-D Gaussian, so the published
# sigmas are the bundle's times COVARIANCE_SIGMA_SCALE, and the gates apply to those.
COVARIANCE_SIGMA_SCALE = 3.9
MAX_POSITION_SIGMA_M = 1.0    # calibrated sigma (largest axis) for a metric pose to publish
MAX_YAW_SIGMA_DEG = 5.0


@dataclasses.dataclass
class VerifySettings:
    """The matcher settings of verification (names as in MatcherConfig)."""

    verify_top_k: int = 5
    min_inliers: int = 8
    inlier_weight: float = 0.5
    inlier_saturation: int = 20
    verify_keypoints: int = 512
    metric_pose: bool = True  # the metric pose wants views: no early exit before METRIC_VIEWS

    @classmethod
    def of(cls, cfg) -> 'VerifySettings':
        """The fields of ``cfg`` (a MatcherConfig) with these names."""
        return cls(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls)
                      if hasattr(cfg, f.name)})


@dataclasses.dataclass
class Verified:
    """Result for one frame, in the new candidate order."""

    order: np.ndarray         # (k,) indices into the candidates given
    scores: np.ndarray        # (k,) combined scores, best first
    inliers: np.ndarray       # (k,) RANSAC inliers; -1: not verified
    pairs: list               # (k,) PairResult or None
    ms: float = 0.0           # time spent matching and in RANSAC

    @property
    def best_inliers(self) -> int:
        """Inliers of the (new) best candidate (0 when not verified)."""
        return max(int(self.inliers[0]), 0) if len(self.inliers) else 0


class Verifier:
    """Query feature extraction and top-k verification against one map's feature store."""

    def __init__(self, store, settings: VerifySettings):
        self.store, self.s = store, settings
        self.method = store.method
        self.extract = FeatureExtractor(self.method, settings.verify_keypoints)
        self._cache: dict = {}

    def _view(self, place_id: int):
        """(features, matchable descriptors) of a map place, kept for a few frames."""
        got = self._cache.get(place_id)
        if got is None:
            f = self.store.features(place_id)
            got = (f, None if f is None else as_matchable(f.desc, self.method))
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[place_id] = got
        return got

    def verify(self, ids, scores, query: LocalFeatures) -> Verified:
        """Match ``query`` with the first verify_top_k of ``ids`` and re-rank them."""
        t0 = time.perf_counter()
        s = self.s
        ids = np.asarray(ids, np.int64)
        comb = np.asarray(scores, np.float64).copy()
        inliers = np.full(len(ids), -1, np.int64)
        pairs: List[Optional[object]] = [None] * len(ids)
        qd = as_matchable(query.desc, self.method)
        least = METRIC_VIEWS if s.metric_pose else 1
        sat = max(1, s.inlier_saturation)
        full = max(sat, s.min_inliers)  # inliers of a candidate with the full bonus
        for i in range(min(len(ids), max(0, s.verify_top_k))):
            view, vd = self._view(int(ids[i]))
            if view is None:
                continue
            pr = verify_pair(query.xy, qd, view.xy, vd, self.method)
            inliers[i], pairs[i] = pr.inliers, pr
            if pr.inliers >= s.min_inliers:
                comb[i] += s.inlier_weight * min(pr.inliers, sat) / sat
            b = int(np.argmax(comb[:i + 1]))
            if (i + 1 >= least and inliers[b] >= full
                    and comb[b] >= comb[i + 1:].max(initial=-np.inf) + s.inlier_weight):
                break  # lossless: no later candidate, even with the full bonus, overtakes
        order = np.argsort(-comb, kind='stable')
        return Verified(order, comb[order], inliers[order], [pairs[i] for i in order],
                        (time.perf_counter() - t0) * 1e3)


def view_correspondences(verified: Verified, positions, yaws, store, ids, min_inliers: int,
                         max_views: int = METRIC_VIEWS):
    """ViewCorrespondences (vpr_ros.verification.metric_pose) of the best verified views with
    known intrinsics, in the verified order; positions/yaws/ids are in that order too."""
    from vpr_ros.verification.metric_pose import ViewCorrespondences
    out = []
    pitch = float(np.radians(store.header.get('camera_pitch_deg', 0.0)))
    for i, pr in enumerate(verified.pairs):
        if pr is None or pr.inliers < min_inliers:
            continue
        K = store.intrinsics(int(ids[i]))
        if K is None:
            continue
        out.append(ViewCorrespondences(pr.query_xy.astype(np.float64),
                                       pr.view_xy.astype(np.float64),
                                       np.asarray(positions[i], np.float64).reshape(3),
                                       float(yaws[i]), K, pitch))
        if len(out) >= max_views:
            break
    return out


def metric_pose_of(verified: Verified, match, verifier: Verifier, local: LocalFeatures,
                   query_K=None, max_offset_m: float = 25.0):
    """(MetricPose or None, ms) of a verified frame: estimate_metric_pose on the verified views
    (None when the map has no intrinsics, the geometry is weak, or the pose lands more than
    ``max_offset_m`` from the best verified place). ``query_K`` defaults to the map camera's
    when the query image has the map images' size."""
    t0 = time.perf_counter()
    try:
        from vpr_ros.verification.metric_pose import estimate_metric_pose
    except ImportError:  # pragma: no cover - the module ships with the package
        return None, 0.0
    s = verifier.s
    if verified.best_inliers < max(s.min_inliers, s.inlier_saturation):
        return None, 0.0    # 26 of the 28 estimates had a VERIFIED best view: skip the rest
    store = verifier.store
    views = view_correspondences(verified, match.positions, match.yaws, store, match.ids,
                                 verifier.s.min_inliers)
    if not views:
        return None, (time.perf_counter() - t0) * 1e3
    if query_K is None:
        top = store.features(int(match.ids[0]))
        if top is not None and tuple(top.size) == tuple(local.size):
            query_K = views[0].view_K
    pose = None
    if query_K is not None:
        try:
            k = COVARIANCE_SIGMA_SCALE
            pose = estimate_metric_pose(views, np.asarray(query_K, np.float64),
                                        max_position_sigma_m=MAX_POSITION_SIGMA_M / k,
                                        max_yaw_sigma_deg=MAX_YAW_SIGMA_DEG / k)
        except (ValueError, np.linalg.LinAlgError):
            pose = None
        if pose is not None:
            pose = dataclasses.replace(pose, covariance=np.asarray(pose.covariance) * k * k)
    if pose is not None:
        off = np.hypot(pose.x - views[0].view_position[0], pose.y - views[0].view_position[1])
        if not (np.isfinite(off) and off <= max_offset_m
                and np.all(np.isfinite(np.asarray(pose.covariance)))):
            pose = None
    return pose, (time.perf_counter() - t0) * 1e3


def with_metric_pose(est, pose):
    """``est`` (tracking.Estimate) with its x, y, yaw and their covariance from ``pose``."""
    cov = np.array(est.covariance, np.float64, copy=True).reshape(6, 6)
    idx = [0, 1, 5]
    c3 = np.asarray(pose.covariance, np.float64).reshape(3, 3)
    cov[np.ix_(idx, range(6))] = 0.0
    cov[np.ix_(range(6), idx)] = 0.0
    cov[np.ix_(idx, idx)] = c3
    return dataclasses.replace(est, x=float(pose.x), y=float(pose.y), yaw=float(pose.yaw),
                               covariance=cov)
