"""The solver of vpr_ros.verification.metric_pose: tracks across map views, triangulation, a
planar 3-point RANSAC, the essential matrix with a metric scale, and one robust bundle.

Map frame REP 103 (x east, y north, z up, yaw CCW from +x); camera axes as in OpenCV (x right,
y down, z along the optical axis). ``estimate(views, cams, K, options)`` returns (pose
p = x, y, z, yaw, pitch; Schur-reduced normal matrix; residual variance; points kept; their
query pixels; method) or None; metric_pose.estimate_metric_pose turns it into a MetricPose.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from vpr_ros.verification.pose_bundle import _tr, bundle, project, rotation

RANSAC_HYPOTHESES = 256
MIN_TRACKS = 6                # points seen by >= 2 map views that fix the metric scale
GROUND_SHARE = 0.25           # least share of the points below the camera on the ground
GROUND_BAND_M = 0.1           # points this close to the ground plane get its prior


def _planar_ransac(un, X, thr_n, rng):
    """3-point planar pose (cx, cy, yaw) from horizontal bearings un = x/z; MSAC scoring."""
    n = len(un)
    rows = np.stack([un * X[:, 0] + X[:, 1], un * X[:, 1] - X[:, 0], -un, np.ones(n)], 1)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    pick = rng.integers(0, n, (RANSAC_HYPOTHESES, 3))
    a, b, c = pick.T
    pick = pick[(a != b) & (a != c) & (b != c)]
    M = rows[pick]
    sol = np.stack([(-1) ** j * np.linalg.det(M[:, :, [k for k in range(4) if k != j]])
                    for j in range(4)], 1)
    norm = np.hypot(sol[:, 0], sol[:, 1])
    sol = sol[norm > 1e-12] / norm[norm > 1e-12, None]
    if not len(sol):
        return np.zeros(2), 0.0, np.zeros(n, bool)
    c, s, a, b = sol.T
    cx, cy = c * a + s * b, s * a - c * b
    dx, dy = X[None, :, 0] - cx[:, None], X[None, :, 1] - cy[:, None]
    depth, lat = c[:, None] * dx + s[:, None] * dy, s[:, None] * dx - c[:, None] * dy
    flip = np.where(np.sum(depth > 0, 1) < n / 2, -1.0, 1.0)   # yaw + pi: the other sign
    depth, lat = depth * flip[:, None], lat * flip[:, None]
    err = np.where(depth > 0, np.abs(lat / np.where(depth > 0, depth, 1.0) - un[None]), np.inf)
    score = np.sum(np.minimum(err, thr_n) ** 2, 1)
    k = int(np.argmin(score))
    yaw = math.atan2(s[k] * flip[k], c[k] * flip[k])
    return np.array([cx[k], cy[k]]), yaw, err[k] < thr_n


def _tracks(views, tol=0.25):
    """Query keypoints linked across views by their (identical) query coordinates.

    Returns seen (T, V), map-view pixels obs (T, V, 2), query pixels (T, 2) and, per view, the
    track index of each of its correspondences.
    """
    xy = [np.asarray(v.query_xy, float).reshape(-1, 2) for v in views]
    q = np.concatenate(xy)
    vxy = np.concatenate([np.asarray(v.view_xy, float).reshape(-1, 2) for v in views])
    vid = np.repeat(np.arange(len(views)), [len(a) for a in xy])
    inv = np.unique(np.round(q / tol).astype(np.int64), axis=0, return_inverse=True)[1].ravel()
    t = int(inv.max()) + 1
    v = len(views)
    seen, obs, qxy = np.zeros((t, v), bool), np.zeros((t, v, 2)), np.zeros((t, 2))
    seen[inv, vid], obs[inv, vid], qxy[inv] = True, vxy, q
    return seen, obs, qxy, np.split(inv, np.cumsum([len(a) for a in xy])[:-1])


def _triangulate(cams, seen, obs, thr, min_parallax):
    """Multi-view midpoint of every track seen by >= 2 views; mask of the well-conditioned ones."""
    A, b, rays = np.zeros((len(obs), 3, 3)), np.zeros((len(obs), 3)), []
    for v, (K, R, C) in enumerate(cams):
        d = np.c_[(obs[:, v] - K[:2, 2]) / np.diag(K)[:2], np.ones(len(obs))] @ R
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        M = (np.eye(3)[None] - d[:, :, None] * d[:, None, :]) * seen[:, v, None, None]
        A, b, rays = A + M, b + M @ C, rays + [d]
    ok = seen.sum(1) >= 2
    X = np.linalg.solve(A + np.eye(3) * 1e-12, b[:, :, None])[:, :, 0]
    rays = np.stack(rays, 1)
    cos = rays @ _tr(rays)
    pair = seen[:, :, None] & seen[:, None, :]
    ok &= np.where(pair, cos, 1.0).min((1, 2)) < math.cos(math.radians(min_parallax))
    for v, (K, R, C) in enumerate(cams):
        uv, z = project(K, R, C, X)
        bad = (z <= 0) | (np.linalg.norm(uv - obs[:, v], axis=1) > thr)
        ok &= ~(seen[:, v] & bad)
    return X, ok


def _fixed(cams, seen, obs):
    return [(K, R, C, np.flatnonzero(seen[:, v]), obs[seen[:, v], v])
            for v, (K, R, C) in enumerate(cams)]


def _multi_view(tr, X, ok, cams, K, o):
    """Triangulated tracks -> planar 3-point RANSAC -> every correspondence re-triangulated
    with the query as one more camera -> bundle."""
    seen, obs, qxy = tr[:3]
    idx = np.flatnonzero(ok)
    un = (qxy[idx, 0] - K[0, 2]) / K[0, 0]
    C, yaw, inl = _planar_ransac(un, X[idx], 1.5 * o['thr'] / K[0, 0], np.random.default_rng(0))
    if inl.sum() < MIN_TRACKS:
        return None
    idx = idx[inl]
    vn = (qxy[idx, 1] - K[1, 2]) / K[1, 1]
    depth = (X[idx, :2] - C) @ np.array([math.cos(yaw), math.sin(yaw)])
    p = np.array([C[0], C[1], np.median(X[idx, 2] + vn * depth), yaw, 0.0])
    idx = np.flatnonzero(ok)              # the RANSAC pose seeds a robust bundle of all tracks
    p = bundle(p, X[idx], K, qxy[idx], _fixed(cams, seen[idx], obs[idx]),
               np.zeros(len(idx), bool))[0]
    query = (K, rotation(p[3], p[4]), p[:3])
    Xa, oka = _triangulate(cams + [query], np.c_[seen, np.ones(len(seen), bool)],
                           np.concatenate([obs, qxy[:, None]], 1), o['thr'], o['min_parallax'])
    oka[idx] = True
    return _solve(p, Xa[oka], K, qxy[oka], cams, seen[oka], obs[oka],
                  np.zeros(int(oka.sum()), bool), o, 'triangulate+pnp')


def _solve(p, X, K, qxy, cams, seen, obs, ground, o, method):
    """Bundle; drop points that reproject badly (and relabel the ground); bundle again."""
    for rnd in range(3):
        p, X, S, s2 = bundle(p, X, K, qxy, _fixed(cams, seen, obs), ground)
        if rnd == 2:
            break
        err = [np.linalg.norm(project(K, rotation(p[3], p[4]), p[:3], X)[0] - qxy, axis=1)]
        for v, (Kv, Rv, Cv) in enumerate(cams):
            e = np.linalg.norm(project(Kv, Rv, Cv, X)[0] - obs[:, v], axis=1)
            err.append(np.where(seen[:, v], e, 0.0))
        keep = np.max(err, axis=0) <= min(o['thr'], max(1.0, 3.5 * math.sqrt(s2)))
        if ground.any():                  # relabel; drop points forced onto or below it
            relabel = np.abs(X[:, 2]) < GROUND_BAND_M
            keep &= (relabel | ~ground) & (X[:, 2] > -GROUND_BAND_M)
        else:
            relabel = ground
        if keep.sum() < o['min_inliers']:
            return None
        if keep.all() and np.array_equal(relabel, ground):
            break
        X, qxy, seen, obs, ground = X[keep], qxy[keep], seen[keep], obs[keep], relabel[keep]
    return p, S, s2, len(X), qxy, method


def _ground(h, min_count, rel=0.05):
    """Mask of the lowest horizontal plane (largest height below the camera) and its height."""
    hs = h[h > 0]
    if len(hs) < min_count:
        return None
    counts = np.sum(np.abs(hs[:, None] - hs[None, :]) < rel * hs[:, None], 1)
    strong = counts >= max(min_count, 0.5 * counts.max(), GROUND_SHARE * len(hs))
    if not strong.any():
        return None
    top = hs[strong].max()
    hg = float(np.median(hs[np.abs(hs - top) < rel * top]))
    return np.abs(h - hg) < rel * hg, hg


def _relative_pose(view_xy, Kv, Rv, query_xy, K, thr):
    """Essential-matrix RANSAC between a map view and the query (normalised coordinates).

    Returns R, t (x_query = R x_view + t, |t| = 1) and the inlier mask, or None (too few
    points, OpenCV failure, query camera not level).
    """
    xv = (view_xy - Kv[:2, 2]) / np.diag(Kv)[:2]
    xq = (query_xy - K[:2, 2]) / np.diag(K)[:2]
    if len(xv) < 5:
        return None
    try:                                  # OpenCV asserts on some degenerate point sets
        E, mask = cv2.findEssentialMat(xv, xq, np.eye(3), cv2.RANSAC, 0.999,
                                       thr / (0.5 * (K[0, 0] + Kv[0, 0])))
        if E is None or E.shape[0] < 3:
            return None
        _, R, t, mask = cv2.recoverPose(E[:3], xv, xq, np.eye(3), mask=mask)
    except cv2.error:
        return None
    if abs(float((R @ Rv)[0, 2])) > math.sin(math.radians(10)):   # query camera not level
        return None
    return R, t.ravel(), mask.ravel() > 0


def _essential(tr, Xm, okm, b, cams, K, o):
    """View b and the query: essential matrix, scale from triangulated tracks or the ground."""
    seen, obs, qxy, rows = tr
    Kv, Rv, Cv = cams[b]
    rel = _relative_pose(obs[rows[b], b], Kv, Rv, qxy[rows[b]], K, o['thr'])
    if rel is None:
        return None
    tb = np.unique(rows[b][rel[2]])       # a query keypoint matched twice counts once
    xv = (obs[tb, b] - Kv[:2, 2]) / np.diag(Kv)[:2]
    xq = (qxy[tb] - K[:2, 2]) / np.diag(K)[:2]
    f = 0.5 * (K[0, 0] + Kv[0, 0])
    R, t = rel[:2]                        # the rows are inliers of this essential matrix
    pair = [(np.eye(3), np.eye(3), np.zeros(3)), (np.eye(3), R, -R.T @ t)]
    Xc, ok = _triangulate(pair, np.ones((len(tb), 2), bool), np.stack([xv, xq], 1),
                          o['thr'] / f, o['min_parallax'])
    if ok.sum() < o['min_inliers']:
        return None
    Xc, tb = Xc[ok], tb[ok]
    metric = okm[tb]
    ratio = ((Xm[tb[metric]] - Cv) @ Rv.T)[:, 2] / Xc[metric, 2]
    ground = np.zeros(len(tb), bool)
    if len(ratio) >= 2 and np.median(np.abs(ratio / np.median(ratio) - 1)) < 0.1:
        s = float(np.median(ratio))
    elif Cv[2] > 0.3:                     # camera height known (a map storing z = 0 has none)
        cq = pair[1][2]                   # the query centre; ground from well-triangulated points
        cos = np.sum(Xc * (Xc - cq), 1) / np.linalg.norm(Xc, axis=1)
        cos /= np.linalg.norm(Xc - cq, axis=1)
        h = Xc @ (Rv @ np.array([0.0, 0.0, -1.0]))
        found = _ground(np.where(cos < math.cos(math.radians(3 * o['min_parallax'])), h, -1.0),
                        o['min_ground'])
        if found is None:
            return None
        ground, hg = found
        s = Cv[2] / hg                    # the centred frame puts the ground at z = 0
    else:
        return None
    Rq = R @ Rv
    yaw, pitch = math.atan2(Rq[2, 1], Rq[2, 0]), math.asin(float(np.clip(Rq[2, 2], -1, 1)))
    p = np.r_[Cv + (s * pair[1][2]) @ Rv, yaw, pitch]
    return _solve(p, Cv + (s * Xc) @ Rv, K, qxy[tb], cams, seen[tb], obs[tb], ground, o,
                  'essential+scale')


def estimate(views, cams, K, o):
    """The pose of the query from the views' correspondences (None: weak geometry)."""
    tr = _tracks(views)
    X, ok = _triangulate(cams, tr[0], tr[1], o['thr'], o['min_parallax'])
    out = _multi_view(tr, X, ok, cams, K, o) if ok.sum() >= MIN_TRACKS else None
    if out is None:
        out = _essential(tr, X, ok, int(np.argmax(tr[0].sum(0))), cams, K, o)
    return out
