"""From retrieved candidates to a place match and a pose prior with covariance (no ROS).

The confidence is the softmax mass (over cosine scores at a temperature) of the candidates that
lie near the best one: when the top-k agree geographically the match is trustworthy, when they
are scattered over the map it is not. The pose prior is the weighted mean of the agreeing
candidates, and its covariance is their weighted spread plus a floor, inflated by the mass that
disagrees, so a prior is never more certain than the retrieval behind it.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

# Variance reported for the degrees of freedom VPR does not observe (z, roll, pitch).
UNOBSERVED_VARIANCE = 1e6


@dataclasses.dataclass
class PosePrior:
    """Summary of one query's candidates."""

    confidence: float          # probability mass agreeing with the best candidate, [0, 1]
    x: float
    y: float
    z: float
    yaw: float                 # radians, CCW from map x (REP 103)
    covariance: np.ndarray     # (6, 6) over x, y, z, roll, pitch, yaw
    num_agreeing: int


def softmax_weights(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of cosine scores at ``temperature`` (numerically stable)."""
    s = np.asarray(scores, dtype=np.float64) / max(float(temperature), 1e-6)
    e = np.exp(s - s.max())
    return e / e.sum()


def yaw_to_quaternion(yaw: float):
    """(x, y, z, w) of a rotation by ``yaw`` about z."""
    return 0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0)


def quaternion_to_yaw(x: float, y: float, z: float, w: float) -> float:
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def summarize_candidates(scores, positions, yaws, temperature: float = 0.02,
                         cluster_radius_m: float = 10.0, base_position_std_m: float = 2.0,
                         base_yaw_std_rad: float = 0.2) -> PosePrior:
    """Confidence and pose prior from top-k ``scores`` (k,), ``positions`` (k,3), ``yaws`` (k,).

    Candidates must be sorted best first; invalid ones (e.g. padding) must be removed first.
    """
    scores = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    yaws = np.asarray(yaws, dtype=np.float64)
    if scores.size == 0 or pos.shape[0] != scores.size or yaws.size != scores.size:
        raise ValueError('summarize_candidates needs k >= 1 scores, positions and yaws')
    w = softmax_weights(scores, temperature)
    agree = np.linalg.norm(pos[:, :2] - pos[0, :2], axis=1) <= cluster_radius_m
    wa = w[agree] / w[agree].sum()
    mean = (wa[:, None] * pos[agree]).sum(axis=0)
    yaw = math.atan2((wa * np.sin(yaws[agree])).sum(), (wa * np.cos(yaws[agree])).sum())
    confidence = float(w[agree].sum())

    d = pos[agree, :2] - mean[:2]
    spread = (wa[:, None, None] * d[:, :, None] * d[:, None, :]).sum(axis=0)
    # Mass on far candidates widens the prior by their spread around the chosen mean.
    dall = pos[:, :2] - mean[:2]
    spread_all = (w[:, None, None] * dall[:, :, None] * dall[:, None, :]).sum(axis=0)
    cov_xy = spread + (1.0 - confidence) * spread_all + np.eye(2) * base_position_std_m ** 2
    resultant = math.hypot((wa * np.sin(yaws[agree])).sum(), (wa * np.cos(yaws[agree])).sum())
    yaw_var = -2.0 * math.log(max(resultant, 1e-9)) + base_yaw_std_rad ** 2
    yaw_var += (1.0 - confidence) * math.pi ** 2 / 3.0  # uniform-yaw variance for the rest

    cov = np.diag([0.0, 0.0, UNOBSERVED_VARIANCE, UNOBSERVED_VARIANCE, UNOBSERVED_VARIANCE,
                   yaw_var])
    cov[:2, :2] = cov_xy
    return PosePrior(confidence=confidence, x=float(mean[0]), y=float(mean[1]),
                     z=float(mean[2]), yaw=float(yaw), covariance=cov,
                     num_agreeing=int(agree.sum()))
