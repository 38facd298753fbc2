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


def pair_d2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) squared distances between 2-D points, one coordinate at a time (ten
    times faster than broadcasting (N, M, 2) and summing: it is on every frame's path)."""
    return (a[:, 0, None] - b[None, :, 0]) ** 2 + (a[:, 1, None] - b[None, :, 1]) ** 2


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
    d2 = pair_d2(h.xy, cand_xy)                                         # (N, k)
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
    """Moment-match hypotheses whose means are closer than ``radius`` (heaviest first): each
    still free hypothesis, in order of weight, takes every free one within ``radius`` of it
    into its group; the groups' moments are then computed all at once."""
    n = len(h)
    if n < 2 or radius <= 0:
        return h
    d2 = pair_d2(h.xy, h.xy)
    close = d2 < radius * radius
    if close.sum() == n:  # nothing to merge
        return h
    group = np.full(n, -1)
    g = 0
    for i in np.argsort(-h.w, kind='stable'):
        if group[i] < 0:
            group[close[i] & (group < 0)] = g
            g += 1
    return _combine_groups(h, group, g)


def _combine_groups(h: Hypotheses, group: np.ndarray, n_groups: int) -> Hypotheses:
    """One moment-matched hypothesis per group (rows in group order); a group of one keeps
    its hypothesis as it is, a group without weight keeps its lowest-index member."""
    def total(values):
        return np.bincount(group, values, minlength=n_groups)
    tot = total(h.w)
    count = np.bincount(group, minlength=n_groups)
    u = np.divide(h.w, tot[group], out=np.zeros_like(h.w), where=tot[group] > 0)
    xy = np.stack([total(u * h.xy[:, 0]), total(u * h.xy[:, 1])], axis=1)
    var = total(u * (h.var + ((h.xy - xy[group]) ** 2).sum(axis=1) / 2.0))
    yaw = np.arctan2(total(u * np.sin(h.yaw)), total(u * np.cos(h.yaw)))
    yaw_var = total(u * (h.yaw_var + wrap(h.yaw - yaw[group]) ** 2))
    out = Hypotheses(xy, var, total(u * h.z), yaw, yaw_var, tot)
    first = np.full(n_groups, len(group))
    np.minimum.at(first, group, np.arange(len(group)))
    keep = (count == 1) | (tot <= 0)  # copied unchanged from their (lowest-index) member
    for f in dataclasses.fields(Hypotheses):
        getattr(out, f.name)[keep] = getattr(h, f.name)[first[keep]]
    return out


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
    d2 = pair_d2(h.xy, h.xy)
    near = d2 <= radius * radius
    centre = int(np.argmax(near.astype(np.float64) @ h.w))
    return np.flatnonzero(near[centre])
