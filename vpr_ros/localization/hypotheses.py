"""A sparse Gaussian-sum belief over the robot pose in the map frame (no ROS).

Each hypothesis is a small Gaussian: an xy mean with an isotropic variance, a yaw mean with a
variance, and a weight. The belief never holds more than a few hundred of them, whatever the
size of the map, so a frame costs O(M * k) for M hypotheses and k retrieved candidates.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np


def wrap(a):
    """Angles wrapped to [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2.0 * np.pi) - np.pi


@dataclasses.dataclass
class Hypotheses:
    """Structure of arrays, one row per hypothesis; weights sum to 1 unless empty."""

    xy: np.ndarray       # (N, 2) metres
    var: np.ndarray      # (N,) xy variance per axis, m^2
    z: np.ndarray        # (N,) height carried from the candidates (not filtered)
    yaw: np.ndarray      # (N,) radians
    yaw_var: np.ndarray  # (N,) rad^2
    w: np.ndarray        # (N,)

    @classmethod
    def empty(cls) -> 'Hypotheses':
        z = np.zeros(0)
        return cls(np.zeros((0, 2)), z, z, z, z, z)

    def __len__(self) -> int:
        return int(self.w.size)

    def take(self, idx) -> 'Hypotheses':
        return Hypotheses(self.xy[idx], self.var[idx], self.z[idx], self.yaw[idx],
                          self.yaw_var[idx], self.w[idx])

    @staticmethod
    def concat(a: 'Hypotheses', b: 'Hypotheses') -> 'Hypotheses':
        return Hypotheses(*(np.concatenate([getattr(a, f.name), getattr(b, f.name)])
                            for f in dataclasses.fields(Hypotheses)))


def move_with_odometry(h: Hypotheses, dx: float, dy: float, dyaw: float, trans_noise: float,
                       yaw_noise: float, yaw_noise_per_m: float) -> None:
    """Apply a robot-frame motion (dx, dy, dyaw) to every hypothesis, in place.

    Noise grows with the distance travelled; the heading uncertainty of each hypothesis also
    spreads its position sideways (dist^2 * yaw_var).
    """
    c, s = np.cos(h.yaw), np.sin(h.yaw)
    h.xy = h.xy + np.stack([c * dx - s * dy, s * dx + c * dy], axis=1)
    dist = math.hypot(dx, dy)
    h.var = h.var + (trans_noise * dist) ** 2 + dist ** 2 * h.yaw_var
    h.yaw = wrap(h.yaw + dyaw)
    h.yaw_var = h.yaw_var + (yaw_noise * abs(dyaw)) ** 2 + (yaw_noise_per_m * dist) ** 2


def observe(h: Hypotheses, ell: np.ndarray, floor: float, cand_xy: np.ndarray,
            cand_yaw: np.ndarray, obs_var: float, yaw_obs_var: float) -> np.ndarray:
    """Bayes update of every hypothesis by one frame's candidates, in place; returns likelihoods.

    The likelihood of the robot being at candidate j is ``ell[j]``, and ``floor`` anywhere away
    from the candidates; around a candidate it falls off as a Gaussian of variance ``obs_var``
    (convolved with the hypothesis' own variance). Each hypothesis becomes the moment-matched
    mixture of "nothing learnt" (weight ``floor``) and its Kalman update towards each candidate.
    """
    s = h.var[:, None] + obs_var                                        # (N, 1)
    d2 = ((h.xy[:, None, :] - cand_xy[None, :, :]) ** 2).sum(axis=2)    # (N, k)
    g = (obs_var / s) * np.exp(-0.5 * d2 / s)
    a = np.concatenate([np.full((len(h), 1), floor), (ell - floor)[None] * g], axis=1)
    lik = a.sum(axis=1)
    r = a / lik[:, None]
    # per component means/variances: column 0 = no update, columns 1.. = Kalman update
    K = (h.var / (h.var + obs_var))[:, None]
    means = np.concatenate([h.xy[:, None, :], h.xy[:, None, :]
                            + K[:, :, None] * (cand_xy[None] - h.xy[:, None, :])], axis=1)
    comp_var = np.concatenate([h.var[:, None], np.repeat((1.0 - K) * h.var[:, None],
                                                         cand_xy.shape[0], axis=1)], axis=1)
    mean = (r[:, :, None] * means).sum(axis=1)
    spread = ((means - mean[:, None, :]) ** 2).sum(axis=2) / 2.0
    h.var = (r * (comp_var + spread)).sum(axis=1)
    h.xy = mean

    Ky = (h.yaw_var / (h.yaw_var + yaw_obs_var))[:, None]
    innov = np.concatenate([np.zeros((len(h), 1)),
                            Ky * wrap(cand_yaw[None] - h.yaw[:, None])], axis=1)
    yvar = np.concatenate([h.yaw_var[:, None], np.repeat((1.0 - Ky) * h.yaw_var[:, None],
                                                         cand_xy.shape[0], axis=1)], axis=1)
    shift = (r * innov).sum(axis=1)
    h.yaw_var = (r * (yvar + (innov - shift[:, None]) ** 2)).sum(axis=1)
    h.yaw = wrap(h.yaw + shift)
    h.w = h.w * lik
    return lik


def merge(h: Hypotheses, radius: float) -> Hypotheses:
    """Moment-match hypotheses whose means are closer than ``radius`` (heaviest first)."""
    n = len(h)
    if n < 2 or radius <= 0:
        return h
    d2 = ((h.xy[:, None, :] - h.xy[None, :, :]) ** 2).sum(axis=2)
    close = d2 < radius * radius
    if close.sum() == n:  # nothing to merge
        return h
    free = np.ones(n, bool)
    rows = []
    for i in np.argsort(-h.w, kind='stable'):
        if not free[i]:
            continue
        m = np.flatnonzero(close[i] & free)
        free[m] = False
        rows.append(_combine(h, m))
    return Hypotheses(*(np.array(col) for col in zip(*rows)))


def _combine(h: Hypotheses, m: np.ndarray):
    w = h.w[m]
    tot = w.sum()
    if m.size == 1 or tot <= 0:
        i = m[0]
        return h.xy[i], h.var[i], h.z[i], h.yaw[i], h.yaw_var[i], h.w[i]
    u = w / tot
    xy = (u[:, None] * h.xy[m]).sum(axis=0)
    var = (u * (h.var[m] + ((h.xy[m] - xy) ** 2).sum(axis=1) / 2.0)).sum()
    yaw = math.atan2((u * np.sin(h.yaw[m])).sum(), (u * np.cos(h.yaw[m])).sum())
    yaw_var = (u * (h.yaw_var[m] + wrap(h.yaw[m] - yaw) ** 2)).sum()
    return xy, var, (u * h.z[m]).sum(), yaw, yaw_var, tot


def prune(h: Hypotheses, max_count: int, min_weight: float) -> Hypotheses:
    """Keep at most ``max_count`` hypotheses of weight >= ``min_weight`` times the heaviest
    (weights are not renormalised: the caller decides where the pruned mass goes)."""
    if len(h) == 0:
        return h
    keep = np.flatnonzero(h.w >= min_weight * h.w.max())
    if keep.size > max_count:
        keep = keep[np.argsort(-h.w[keep], kind='stable')[:max_count]]
    return h.take(np.sort(keep))


def best_mode(h: Hypotheses, radius: float) -> np.ndarray:
    """Indices of the hypotheses within ``radius`` of the one with the most mass around it."""
    d2 = ((h.xy[:, None, :] - h.xy[None, :, :]) ** 2).sum(axis=2)
    near = d2 <= radius * radius
    centre = int(np.argmax(near.astype(np.float64) @ h.w))
    return np.flatnonzero(near[centre])
