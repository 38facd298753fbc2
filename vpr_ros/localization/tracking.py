"""Per-frame localization logic of the matcher, without ROS.

``LocalizationTracker`` takes each frame's top-k retrieval (and the latest odometry pose, if
any) and returns the estimate the matcher publishes: single-frame (summarize_candidates with a
confidence threshold) or temporally filtered (PlaceFilter), with calibrated confidence.
Offline evaluation uses the same class, so offline and live results agree.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Tuple

import numpy as np

from vpr_ros.retrieval import summarize_candidates


@dataclasses.dataclass
class Estimate:
    x: float
    y: float
    yaw: float
    covariance: np.ndarray        # (6, 6)
    confidence: float             # calibrated
    localized: bool
    relocalized: bool             # a (new) global localization happened on this frame
    status: str                   # lost | localizing | localized
    num_hypotheses: int
    raw_confidence: float = float('nan')  # before calibration


def odom_delta(prev: Tuple[float, float, float], cur: Tuple[float, float, float]):
    """Motion (dx, dy, dyaw) in the robot frame of ``prev`` between two odometry poses."""
    dx, dy = cur[0] - prev[0], cur[1] - prev[1]
    c, s = math.cos(prev[2]), math.sin(prev[2])
    dyaw = math.atan2(math.sin(cur[2] - prev[2]), math.cos(cur[2] - prev[2]))
    return c * dx + s * dy, -s * dx + c * dy, dyaw


class LocalizationTracker:
    """Frame-to-frame state of one matcher (cfg: vpr_ros.config.MatcherConfig)."""

    def __init__(self, cfg):
        from vpr_ros.localization.calibration import Calibration
        self.cfg = cfg
        self.calibration = Calibration.load(cfg.calibration_file) if cfg.calibration_file \
            else None
        self.filter = None
        if cfg.use_filter:
            from vpr_ros.localization.place_filter import PlaceFilter
            self.filter = PlaceFilter(cfg.filter, calibration=self.calibration)
        self.reset()

    def reset(self) -> None:
        """Forget the past (one-shot global relocalization)."""
        if self.filter is not None:
            self.filter.reset()
        self._last_stamp: Optional[float] = None
        self._last_odom = None
        self._was_localized = False

    def _calibrate(self, conf: float, similarity: float = float('nan')) -> float:
        return float(self.calibration.apply(conf, similarity)) if self.calibration is not None \
            else conf

    def step(self, stamp_s: float, scores, positions, yaws, odom=None,
             num_places: int = 0, motion=None, similarity: float = float('nan')) -> Estimate:
        """One frame: ``scores`` (k,) best first, ``positions`` (k,3), ``yaws`` (k,);
        ``odom`` the latest (x, y, yaw) odometry pose or None, or ``motion`` the (dx, dy, dyaw)
        travelled since the last frame in the robot frame; ``num_places`` the map size;
        ``similarity`` the frame's top-1 similarity relative to the map's levels
        (similarity.relative_similarity), the soft factor of a 'platt_sim' calibration."""
        if self.filter is None:
            return self._single_frame(scores, positions, yaws, similarity)
        dt = 0.0 if self._last_stamp is None else max(0.0, stamp_s - self._last_stamp)
        delta = motion
        if delta is None and odom is not None and self._last_odom is not None:
            delta = odom_delta(self._last_odom, odom)
        self._last_stamp, self._last_odom = stamp_s, odom
        self.filter.predict(odom=delta, dt=dt)
        fe = self.filter.update(np.asarray(scores), np.asarray(positions), np.asarray(yaws),
                                num_places, similarity)
        return Estimate(fe.x, fe.y, fe.yaw, np.asarray(fe.covariance), float(fe.confidence),
                        bool(fe.localized), bool(fe.relocalized), fe.status,
                        int(fe.num_hypotheses), float(fe.raw_confidence))

    def _single_frame(self, scores, positions, yaws, similarity=float('nan')) -> Estimate:
        cfg = self.cfg
        prior = summarize_candidates(scores, positions, yaws, cfg.temperature,
                                     cfg.cluster_radius_m, cfg.base_position_std_m,
                                     cfg.base_yaw_std_rad)
        conf = self._calibrate(prior.confidence, similarity)
        localized = conf >= cfg.min_confidence
        relocalized = localized and not self._was_localized
        self._was_localized = localized
        return Estimate(prior.x, prior.y, prior.yaw, prior.covariance, conf, localized,
                        relocalized, 'localized' if localized else 'lost', prior.num_agreeing,
                        float(prior.confidence))
