"""Temporal consistency for place recognition: a multi-hypothesis Bayes filter (no ROS).

Single-frame retrieval is noisy; a robot moves continuously. ``PlaceFilter`` keeps a sparse
Gaussian-sum belief (at most ``max_hypotheses`` weighted hypotheses, independent of the map
size) plus one scalar mass for "somewhere else on the map" (uniform over its places). Each frame
the belief moves with odometry (or diffuses without), a little mass leaks to "elsewhere" (the
robot may have been kidnapped), and the top-k candidates reweight it: their cosine scores,
softmaxed over the whole map with the unseen places scoring like the k-th candidate, say how
likely the robot is at each candidate versus anywhere else. The "elsewhere" mass that the
candidates explain becomes new hypotheses at them, so a kidnapped robot is found again, and flat
(uninformative) scores leave the mass elsewhere: the filter stays lost instead of locking on.
It reports the best mode with a covariance, its probability mass as the confidence and a
hysteresis localized/lost state with one ``relocalized`` event per (re)localization.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import numpy as np

from vpr_ros.localization import hypotheses as hyp
from vpr_ros.retrieval import UNOBSERVED_VARIANCE


@dataclasses.dataclass
class FilterConfig:
    """Filter settings (ROS parameters ``filter.<field>``)."""

    max_hypotheses: int = 200            # sparse belief size, independent of the map size
    temperature: float = 0.02            # softmax temperature over the candidates' cosine scores
    obs_std_m: float = 8.0               # spread of the robot around a correct candidate
    yaw_obs_std_rad: float = 0.5         # spread of the robot heading around a candidate's yaw
    outlier_ratio: float = 0.05          # likelihood away from all candidates >= this * best's
    kidnap_prob: float = 0.02            # belief mass moved to "elsewhere" before each frame
    merge_radius_m: float = 3.0          # hypotheses closer than this are merged
    mode_radius_m: float = 25.0          # the best mode: hypotheses this close to its peak;
    # the confidence is the belief mass within this distance of the estimate (25 m = the VPR
    # protocol's "correct" radius, so calibration targets the same event)
    min_weight: float = 1e-6             # relative to the heaviest hypothesis; lighter are pruned
    max_speed_mps: float = 2.0           # random-walk diffusion per second without odometry
    decorrelation_m: float = 5.0         # travel that makes one frame's evidence independent
    min_evidence: float = 0.1            # evidence weight of a frame without travel (stopped)
    odom_trans_noise: float = 0.1        # position noise std per metre travelled
    odom_yaw_noise: float = 0.1          # yaw noise std per radian turned
    odom_yaw_noise_per_m: float = 0.01   # yaw noise std (rad) per metre travelled
    base_position_std_m: float = 2.0     # floor of the reported position std
    base_yaw_std_rad: float = 0.2        # floor of the reported yaw std
    enter_confidence: float = 0.7        # localized after enter_frames frames at or above this
    enter_frames: int = 3
    exit_confidence: float = 0.4         # lost (not localized) below this
    jump_distance_m: float = 25.0        # a mode jump this far while localized = relocalization


@dataclasses.dataclass
class FilterEstimate:
    """The filter's answer after a frame."""

    x: float
    y: float
    z: float
    yaw: float                 # radians, CCW from map x (REP 103)
    covariance: np.ndarray     # (6, 6) over x, y, z, roll, pitch, yaw
    confidence: float          # calibrated probability that the best mode is right
    raw_confidence: float      # probability mass of the best mode
    localized: bool
    relocalized: bool          # this frame is a (re)localization event
    status: str                # 'lost' | 'localizing' | 'localized'
    num_hypotheses: int


class PlaceFilter:
    """Multi-hypothesis place filter; feed it ``predict`` then ``update`` once per frame."""

    def __init__(self, cfg: Optional[FilterConfig] = None, calibration=None):
        self.cfg = cfg or FilterConfig()
        if self.cfg.exit_confidence > self.cfg.enter_confidence:
            raise ValueError('exit_confidence must not exceed enter_confidence')
        self.calibration = calibration
        self.reset()

    def reset(self) -> None:
        """Forget everything (a global relocalization request)."""
        self.h = hyp.Hypotheses.empty()
        self.w_elsewhere = 1.0
        self._evidence = 1.0
        self.localized = False
        self._streak = 0
        self._last_xy: Optional[np.ndarray] = None
        self._last: Optional[FilterEstimate] = None
        self._similarity = float('nan')  # of the latest frame (see update)

    @property
    def last_estimate(self) -> Optional[FilterEstimate]:
        """The estimate returned by the latest ``update`` (None after ``reset``)."""
        return self._last

    def predict(self, odom: Optional[Sequence[float]] = None, dt: float = 0.0) -> None:
        """Move the belief by ``odom`` = (dx, dy, dyaw) in the robot frame since the last frame,
        or without odometry diffuse it by a random walk of ``max_speed_mps * dt``.

        The travel also sets how much the next ``update`` counts: consecutive frames of the same
        view are not independent, so a frame's likelihood is tempered by the exponent
        clip(travel / decorrelation_m, min_evidence, 1).
        """
        c = self.cfg
        travel = None
        if odom is not None:
            travel = math.hypot(float(odom[0]), float(odom[1]))
        elif dt > 0:
            travel = c.max_speed_mps * float(dt)
        if travel is not None:
            self._evidence = min(max(travel / max(c.decorrelation_m, 1e-6), c.min_evidence), 1.0)
        if len(self.h) == 0:
            return
        if odom is not None:
            dx, dy, dyaw = (float(v) for v in odom)
            hyp.move_with_odometry(self.h, dx, dy, dyaw, c.odom_trans_noise, c.odom_yaw_noise,
                                   c.odom_yaw_noise_per_m)
        elif dt > 0:
            self.h.var = self.h.var + (c.max_speed_mps * float(dt)) ** 2

    def update(self, scores, positions, yaws, num_places: int = 0,
               similarity: float = float('nan')) -> FilterEstimate:
        """Reweight the belief by one frame's top-k candidates (best first) and report.

        ``num_places`` is the size of the map searched (0: unknown, taken as k); the places not
        retrieved share the remaining softmax mass at the k-th candidate's score.
        ``similarity``: the frame's relative top-1 similarity, for a 'platt_sim' calibration.
        """
        c = self.cfg
        self._similarity = similarity
        scores = np.asarray(scores, dtype=np.float64).ravel()
        pos = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
        yaws = np.asarray(yaws, dtype=np.float64).ravel()
        k = scores.size
        if k == 0 or pos.shape[0] != k or yaws.size != k:
            raise ValueError('update needs k >= 1 scores, positions and yaws')
        n = max(int(num_places), k)
        e = np.exp((scores - scores.max()) / max(c.temperature, 1e-6))
        e_unseen = float(e.min())
        z = e.sum() + (n - k) * e_unseen
        floor = max(e_unseen / z if n > k else 0.0, c.outlier_ratio * float(e.max()) / z)
        ell = np.maximum(e / z, floor)
        # tempered likelihood: ell^a, and a Gaussian^a is a Gaussian with variance / a
        a, self._evidence = self._evidence, 1.0
        ell, floor = ell ** a, floor ** a
        obs_var, yaw_obs_var = c.obs_std_m ** 2 / a, c.yaw_obs_std_rad ** 2 / a
        if len(self.h):
            self.h.w = self.h.w * (1.0 - c.kidnap_prob)
            self.w_elsewhere = self.w_elsewhere * (1.0 - c.kidnap_prob) + c.kidnap_prob
            hyp.observe(self.h, ell, floor, pos[:, :2], yaws, obs_var, yaw_obs_var)
        # "elsewhere" is uniform over the n places: its share at each candidate is born there
        # a birth sits at its candidate with the candidate's own spread (not tempered)
        births = hyp.Hypotheses(pos[:, :2].copy(), np.full(k, c.obs_std_m ** 2),
                                pos[:, 2].copy(), hyp.wrap(yaws),
                                np.full(k, c.yaw_obs_std_rad ** 2),
                                self.w_elsewhere * ell / n)
        self.w_elsewhere *= (n - k) * floor / n
        self.h = hyp.Hypotheses.concat(self.h, births)
        total = self.h.w.sum() + self.w_elsewhere
        self.h.w = self.h.w / total
        self.w_elsewhere /= total
        self.h = hyp.merge(self.h, c.merge_radius_m)
        self.h = hyp.prune(self.h, c.max_hypotheses, c.min_weight)
        self.w_elsewhere = max(1.0 - float(self.h.w.sum()), 0.0)  # pruned mass: elsewhere
        self._last = self._report()
        return self._last

    def step(self, scores, positions, yaws, odom=None, dt: float = 0.0,
             num_places: int = 0) -> FilterEstimate:
        """``predict(odom, dt)`` then ``update(scores, positions, yaws, num_places)``."""
        self.predict(odom, dt)
        return self.update(scores, positions, yaws, num_places)

    def _report(self) -> FilterEstimate:
        c = self.cfg
        m = hyp.best_mode(self.h, c.mode_radius_m)
        w = self.h.w[m]
        u = w / w.sum()
        # a wide hypothesis only partly lies within the radius (Rayleigh CDF of its spread)
        inside = 1.0 - np.exp(-0.5 * c.mode_radius_m ** 2 / self.h.var[m])
        raw = float(min((w * inside).sum(), 1.0))
        xy = (u[:, None] * self.h.xy[m]).sum(axis=0)
        d = self.h.xy[m] - xy
        cov_xy = (u[:, None, None] * d[:, :, None] * d[:, None, :]).sum(axis=0)
        cov_xy += np.eye(2) * ((u * self.h.var[m]).sum() + c.base_position_std_m ** 2)
        sin, cos = (u * np.sin(self.h.yaw[m])).sum(), (u * np.cos(self.h.yaw[m])).sum()
        yaw = math.atan2(sin, cos)
        yaw_var = (-2.0 * math.log(max(math.hypot(sin, cos), 1e-9))
                   + (u * self.h.yaw_var[m]).sum() + c.base_yaw_std_rad ** 2)
        cov = np.diag([0.0, 0.0, UNOBSERVED_VARIANCE, UNOBSERVED_VARIANCE, UNOBSERVED_VARIANCE,
                       yaw_var])
        cov[:2, :2] = cov_xy
        conf = float(self.calibration.apply(raw, self._similarity)) \
            if self.calibration is not None else raw

        relocalized = False
        if self.localized:
            jumped = (self._last_xy is not None
                      and float(np.linalg.norm(xy - self._last_xy)) > c.jump_distance_m)
            if conf < c.exit_confidence:
                self.localized, self._streak = False, 0
            elif jumped and conf >= c.enter_confidence:
                relocalized = True   # a confident new mode: one event, stay localized
            elif jumped:
                self.localized, self._streak = False, 0  # re-earn localization at the new mode
        if not self.localized:
            moved = (self._last_xy is not None
                     and float(np.linalg.norm(xy - self._last_xy)) > c.jump_distance_m)
            self._streak = (0 if conf < c.enter_confidence else
                            1 if moved else self._streak + 1)
            if self._streak >= c.enter_frames:
                self.localized = relocalized = True
        self._last_xy = xy
        status = ('localized' if self.localized else
                  'localizing' if conf >= c.exit_confidence else 'lost')
        return FilterEstimate(float(xy[0]), float(xy[1]), float((u * self.h.z[m]).sum()), yaw,
                              cov, conf, raw, self.localized, relocalized, status, len(self.h))
