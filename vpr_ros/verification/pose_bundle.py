"""Projection and the robust bundle of vpr_ros.verification.metric_pose.

``bundle(p, X, K, xy, fixed, ground)``: Gauss-Newton with backtracking over the query pose
p = (x, y, z, yaw, pitch) and the points X, Cauchy loss on the reprojection errors in the query
and the fixed map views, a prior holding ``ground`` points at z = 0; it returns the pose, the
points, the Schur-reduced (5, 5) normal matrix of the pose and the residual variance (px^2).
"""
from __future__ import annotations

import math

import numpy as np

GROUND_SIGMA_PX_PER_M = 50.0   # weight of the ground-plane prior: 2 cm of height ~ 1 px
CAUCHY_PX = 2.0               # scale of the robust (Cauchy) loss in the bundle


def rotation(yaw: float, pitch: float = 0.0) -> np.ndarray:
    """World -> camera rotation (rows: camera right, down, forward in the map frame)."""
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    return np.array([[sy, -cy, 0.0], [cy * sp, sy * sp, -cp], [cy * cp, sy * cp, sp]])


def project(K, R, C, X):
    """Pixel coordinates (N, 2) and depths (N,) of world points X (N, 3)."""
    Xc = (X - C) @ R.T
    z = Xc[:, 2]
    zs = np.where(np.abs(z) < 1e-9, 1e-9, z)
    uv = np.stack([K[0, 0] * Xc[:, 0] / zs + K[0, 2], K[1, 1] * Xc[:, 1] / zs + K[1, 2]], 1)
    return uv, z


def _point_jacobian(K, R, C, X):
    """d(pixel)/d(camera-frame point) (N, 2, 3) and the camera-frame points (N, 3)."""
    Xc = (X - C) @ R.T
    z = np.where(np.abs(Xc[:, 2]) < 1e-9, 1e-9, Xc[:, 2])
    J = np.zeros((len(X), 2, 3))
    J[:, 0, 0], J[:, 0, 2] = K[0, 0] / z, -K[0, 0] * Xc[:, 0] / z ** 2
    J[:, 1, 1], J[:, 1, 2] = K[1, 1] / z, -K[1, 1] * Xc[:, 1] / z ** 2
    return J, Xc


def _rotation_derivatives(yaw, pitch):
    """d rotation / d yaw and d rotation / d pitch."""
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    d_yaw = np.array([[cy, sy, 0.0], [-sy * sp, cy * sp, 0.0], [-sy * cp, cy * cp, 0.0]])
    d_pitch = np.array([[0.0, 0.0, 0.0], [cy * cp, sy * cp, sp], [-cy * sp, -sy * sp, cp]])
    return d_yaw, d_pitch


def _tr(a):
    return np.swapaxes(a, 1, 2)


def _normal_equations(p, X, K, xy, fixed, ground):
    """Schur-reduced normal matrix and gradient of the pose, plus what the point step needs."""
    R, C = rotation(p[3], p[4]), p[:3]
    Jc, Xc = _point_jacobian(K, R, C, X)
    r_q = np.stack([K[0, 0] * Xc[:, 0], K[1, 1] * Xc[:, 1]], 1) / Xc[:, 2:] + K[:2, 2] - xy
    Jx = Jc @ R
    d = X - C
    Jp = np.concatenate([-Jx] + [Jc @ (d @ dR.T)[:, :, None] for dR in
                                 _rotation_derivatives(p[3], p[4])], 2)
    e2, c2 = np.sum(r_q ** 2, 1), CAUCHY_PX ** 2
    w = 1.0 / (1.0 + e2 / c2)             # Cauchy weights (iteratively re-weighted)
    Jx, Jp, r_q = Jx * np.sqrt(w)[:, None, None], Jp * np.sqrt(w)[:, None, None], \
        r_q * np.sqrt(w)[:, None]
    Hii = _tr(Jx) @ Jx
    gi = (_tr(Jx) @ r_q[:, :, None])[:, :, 0]
    ssq, nres = float(np.sum(np.minimum(e2, 9 * c2))), 2 * len(X)   # truncated: sigma^2
    cost = float(np.sum(c2 * np.log1p(e2 / c2)))
    for Kv, Rv, Cv, idx, vxy in fixed:
        Jv, Xv = _point_jacobian(Kv, Rv, Cv, X[idx])
        r_v = np.stack([Kv[0, 0] * Xv[:, 0], Kv[1, 1] * Xv[:, 1]], 1) / Xv[:, 2:] + Kv[:2, 2] - vxy
        e2 = np.sum(r_v ** 2, 1)
        wv = 1.0 / (1.0 + e2 / c2)
        Jv = (Jv @ Rv) * np.sqrt(wv)[:, None, None]
        Hii[idx] += _tr(Jv) @ Jv          # idx never repeats within one view
        gi[idx] += (_tr(Jv) @ (r_v * np.sqrt(wv)[:, None])[:, :, None])[:, :, 0]
        ssq, nres = ssq + float(np.sum(np.minimum(e2, 9 * c2))), nres + 2 * len(idx)
        cost += float(np.sum(c2 * np.log1p(e2 / c2)))
    w2 = GROUND_SIGMA_PX_PER_M ** 2
    Hii[ground, 2, 2] += w2
    gi[ground, 2] += w2 * X[ground, 2]
    cost += w2 * float(np.sum(X[ground, 2] ** 2))
    Hinv = np.linalg.inv(Hii + np.eye(3) * 1e-9)
    Hpi = _tr(Jp) @ Jx
    HpiHinv = Hpi @ Hinv
    Jp2 = Jp.reshape(-1, 5)
    S = Jp2.T @ Jp2 - np.sum(HpiHinv @ _tr(Hpi), 0)
    rhs = Jp2.T @ r_q.ravel() - np.sum((HpiHinv @ gi[:, :, None])[:, :, 0], 0)
    return S, rhs, Hinv, Hpi, gi, cost, ssq, nres


def bundle(p, X, K, xy, fixed, ground, iters=15):
    """Gauss-Newton over the query pose p (x, y, z, yaw, pitch) and the points X.

    ``fixed`` holds (K, R, C, point index, xy) of map-view observations; ``ground`` masks points
    held near z = 0. Returns p, X, the Schur-reduced (5, 5) normal matrix and sigma^2 (px^2).
    """
    eq = _normal_equations(p, X, K, xy, fixed, ground)
    for _ in range(iters):
        S, rhs, Hinv, Hpi, gi, cost = eq[:6]
        dp = -np.linalg.solve(S + np.eye(5) * 1e-9, rhs)
        dX = -(Hinv @ (gi + (_tr(Hpi) @ dp))[:, :, None])[:, :, 0]
        for step in (1.0, 0.5, 0.25, 0.1):            # backtracking along the Gauss-Newton step
            trial = _normal_equations(p + step * dp, X + step * dX, K, xy, fixed, ground)
            if trial[5] < cost:
                break
        if not trial[5] < cost:
            break
        p, X, eq = p + step * dp, X + step * dX, trial
        if trial[5] > cost * (1 - 1e-4):
            break
    S, ssq, nres = eq[0], eq[6], eq[7]
    dof = max(1, nres - 5 - 3 * len(X) + int(np.sum(ground)))
    return p, X, S, ssq / dof
