"""Metric query pose (x, y, yaw and a covariance) from verified correspondences with map views.

Map frame REP 103 (x east, y north, z up, yaw CCW from +x); camera axes as in OpenCV (x right,
y down, z along the optical axis); map cameras are level (or at a known ``view_pitch``). Query
keypoints matched in several map views form tracks. Method 'triangulate+pnp' (>= MIN_TRACKS
tracks triangulated from the known view poses): a planar 3-point RANSAC on the horizontal
bearings gives x, y, yaw; every correspondence is then re-triangulated with the query as one
more camera. Method 'essential+scale' (fewer tracks): the essential matrix between the best view
and the query, scaled by the tracks it shares with other views or by the ground plane (the map
camera's height above ``ground_z``). Both end in one bundle (Cauchy loss) over the query pose
(x, y, z, yaw, pitch: z and pitch are nuisances) and the points; the covariance of (x, y, yaw)
is the inverse Schur complement of that bundle times the residual variance. Weak geometry
returns None. Measured figures: ``geometry_bench`` (renders) and test/test_metric_pose.py.
"""
from __future__ import annotations

import dataclasses
import math
from typing import List, Optional

import numpy as np

from vpr_ros.verification.pose_bundle import project, rotation  # noqa: F401 (public)
from vpr_ros.verification.pose_solver import estimate


@dataclasses.dataclass
class ViewCorrespondences:
    """Verified (RANSAC inlier) matches between the query and one map view with a known pose."""

    query_xy: np.ndarray        # (M, 2) pixel coords in the query image
    view_xy: np.ndarray         # (M, 2) matching pixel coords in the map image
    view_position: np.ndarray   # (3,) map camera position (x, y, z) in the map frame, metres
    view_yaw: float             # map camera yaw (rad, CCW from +x)
    view_K: np.ndarray          # (3, 3) pinhole intrinsics of the map image
    view_pitch: float = 0.0     # map camera pitch (rad, up positive); 0 for level cameras


@dataclasses.dataclass
class MetricPose:
    """Query camera pose in the map frame with the covariance over (x, y, yaw)."""

    x: float
    y: float
    yaw: float
    covariance: np.ndarray      # (3, 3) over x, y, yaw
    inliers: int
    views: int
    method: str                 # 'triangulate+pnp' or 'essential+scale'


def estimate_metric_pose(views: List[ViewCorrespondences], query_K: np.ndarray, *,
                         min_inliers: int = 12, max_reprojection_px: float = 4.0,
                         ground_z: float = 0.0, min_parallax_deg: float = 1.0,
                         min_ground_points: int = 8, max_position_sigma_m: float = 0.2,
                         max_yaw_sigma_deg: float = 2.0,
                         max_distance_m: float = 40.0) -> Optional[MetricPose]:
    """The query camera's (x, y, yaw) in the map frame, or None when the geometry is weak.

    ``views`` share one set of query keypoints (identical query coordinates link them). None
    when fewer than ``min_inliers`` points survive the bundle, parallax is below
    ``min_parallax_deg`` (zero baseline, points at infinity), no scale is found (one view,
    no shared tracks, no ground), the points lie on one image line, the estimate is more than
    ``max_distance_m`` from every view, or the position / yaw standard deviation exceeds
    ``max_position_sigma_m`` / ``max_yaw_sigma_deg``.
    """
    views = [v for v in views if len(np.asarray(v.query_xy).reshape(-1, 2)) >= 5
             and np.isfinite(np.asarray(v.query_xy, float)).all()
             and np.isfinite(np.asarray(v.view_xy, float)).all()]
    if not views:
        return None
    K = np.asarray(query_K, float)
    pos = np.array([np.asarray(v.view_position, float) for v in views])
    origin = np.r_[pos[:, :2].mean(0), ground_z]
    cams = [(np.asarray(v.view_K, float), rotation(v.view_yaw, v.view_pitch), c - origin)
            for v, c in zip(views, pos)]
    o = {'thr': max_reprojection_px, 'min_parallax': min_parallax_deg,
         'min_inliers': max(min_inliers, 6), 'min_ground': min_ground_points}
    try:
        with np.errstate(all='ignore'):
            out = estimate(views, cams, K, o)
    except np.linalg.LinAlgError:         # singular normal equations: degenerate geometry
        return None
    if out is None:
        return None
    p, S, s2, n, qxy, method = out
    sv = np.linalg.svd(qxy - qxy.mean(0), compute_uv=False)
    if sv[1] < 0.05 * sv[0]:
        return None                       # points on one image line: pose poorly observable
    try:
        cov5 = s2 * np.linalg.inv(S)
    except np.linalg.LinAlgError:
        return None
    cov = cov5[np.ix_([0, 1, 3], [0, 1, 3])]
    cov = 0.5 * (cov + cov.T)
    if not np.all(np.isfinite(cov)):
        return None
    eig = np.linalg.eigvalsh(cov[:2, :2])
    if (eig[0] <= 0 or cov[2, 2] <= 0
            or math.sqrt(eig[1]) > max_position_sigma_m
            or math.sqrt(cov[2, 2]) > math.radians(max_yaw_sigma_deg)
            or np.min(np.linalg.norm(pos[:, :2] - origin[:2] - p[:2], axis=1)) > max_distance_m):
        return None
    yaw = math.atan2(math.sin(p[3]), math.cos(p[3]))
    return MetricPose(float(p[0] + origin[0]), float(p[1] + origin[1]), yaw, cov, int(n),
                      len(views), method)
