"""Metric pose from verified correspondences: synthetic scenes with known poses, and one render."""
import math

import cv2
import numpy as np
import pytest

from vpr_ros.verification.metric_pose import (estimate_metric_pose, MetricPose, project, rotation,
                                              ViewCorrespondences)

cv2.setNumThreads(1)
K = np.array([[230.5, 0.0, 159.5], [0.0, 230.5, 119.5], [0.0, 0.0, 1.0]])
QUERY = (2.0, -1.0, 0.15)            # x, y, yaw of the query camera
TWO_VIEWS = ((0.0, 0.0, 0.0), (4.0, 1.0, 0.1))


def _scene(rng, n, ground_frac=0.0, line=False):
    """Random points 8-40 m ahead of the cameras (a fraction on the ground z = 0)."""
    if line:
        t = rng.uniform(0, 1, n)[:, None]
        return np.array([10.0, -6.0, 1.0]) + t * np.array([20.0, 12.0, 4.0])
    X = np.stack([rng.uniform(8, 40, n), rng.uniform(-15, 15, n), rng.uniform(0.3, 10, n)], 1)
    X[rng.random(n) < ground_frac, 2] = 0.0
    return X


def _observe(X, pos, yaw, pitch, noise, rng):
    uv, z = project(K, rotation(yaw, pitch), np.asarray(pos, float), X)
    inside = (z > 0.5) & (uv[:, 0] >= 0) & (uv[:, 0] < 320) & (uv[:, 1] >= 0) & (uv[:, 1] < 240)
    return uv + rng.normal(0.0, noise, uv.shape), inside


def make_views(seed=0, noise=1.0, outliers=0.3, views=TWO_VIEWS, query=QUERY, n=300,
               ground_frac=0.0, line=False, view_pitch=0.0, query_pitch=0.0, query_z=2.0):
    """Correspondences of a query with map views; ``outliers`` of each set are random pairs."""
    rng = np.random.default_rng(seed)
    X = _scene(rng, n, ground_frac, line)
    q_uv, q_in = _observe(X, (query[0], query[1], query_z), query[2], query_pitch, noise, rng)
    out = []
    for x, y, yaw in views:
        v_uv, v_in = _observe(X, (x, y, 2.0), yaw, view_pitch, noise, rng)
        both = q_in & v_in
        k = int(round(outliers / (1.0 - outliers) * both.sum()))
        rand = rng.uniform([0, 0], [320, 240], (2, k, 2))
        out.append(ViewCorrespondences(np.vstack([q_uv[both], rand[0]]),
                                       np.vstack([v_uv[both], rand[1]]),
                                       np.array([x, y, 2.0]), yaw, K, view_pitch))
    return out


def _errors(est, query=QUERY):
    dyaw = math.atan2(math.sin(est.yaw - query[2]), math.cos(est.yaw - query[2]))
    return math.hypot(est.x - query[0], est.y - query[1]), abs(math.degrees(dyaw))


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
def test_two_views_recover_pose_with_outliers(seed):
    est = estimate_metric_pose(make_views(seed), K)
    assert isinstance(est, MetricPose) and est.method == 'triangulate+pnp' and est.views == 2
    pos, yaw = _errors(est)
    assert abs(est.x - QUERY[0]) < 0.3 and abs(est.y - QUERY[1]) < 0.3 and yaw < 1.0, (pos, yaw)
    assert est.inliers >= 12
    cov = est.covariance
    assert cov.shape == (3, 3) and np.allclose(cov, cov.T) and np.all(np.linalg.eigvalsh(cov) > 0)


def test_pitched_map_views_and_query():
    views = make_views(5, view_pitch=math.radians(4.0), query_pitch=math.radians(6.0), query_z=2.3)
    est = estimate_metric_pose(views, K)
    assert est is not None
    pos, yaw = _errors(est)
    assert pos < 0.3 and yaw < 1.0


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_one_view_scale_from_ground(seed):
    views = make_views(seed, views=TWO_VIEWS[:1], ground_frac=0.4, n=400)
    est = estimate_metric_pose(views, K)
    assert est is not None and est.method == 'essential+scale' and est.views == 1
    pos, yaw = _errors(est)
    assert abs(est.x - QUERY[0]) < 0.3 and abs(est.y - QUERY[1]) < 0.3 and yaw < 1.0, (pos, yaw)


def test_one_view_scale_from_a_second_view_with_few_shared_points():
    views = make_views(4, n=400)
    views[1] = ViewCorrespondences(views[1].query_xy[:5], views[1].view_xy[:5],
                                   views[1].view_position, views[1].view_yaw, K)
    est = estimate_metric_pose(views, K, max_position_sigma_m=0.5)   # 5 points: weak scale
    assert est is not None and est.method == 'essential+scale'
    pos, yaw = _errors(est)
    assert pos < 0.3 and yaw < 1.0


def test_covariance_grows_with_noise():
    sig = []
    for noise in (0.5, 2.0):
        est = estimate_metric_pose(make_views(7, noise=noise), K)
        sig.append(np.sqrt(np.diag(est.covariance)))
    assert np.all(sig[1] > 2.0 * sig[0])


def test_too_few_points_gives_none():
    views = make_views(0, n=300)
    few = [ViewCorrespondences(v.query_xy[:10], v.view_xy[:10], v.view_position, v.view_yaw, K)
           for v in views]
    assert estimate_metric_pose(few, K) is None
    assert estimate_metric_pose([], K) is None


def test_collinear_points_give_none():
    assert estimate_metric_pose(make_views(0, line=True, outliers=0.0), K) is None


def test_zero_baseline_gives_none():
    same = ((2.0, -1.0, 0.15), (2.0, -1.0, 0.05))
    assert estimate_metric_pose(make_views(0, views=same, ground_frac=0.4), K) is None


def test_one_view_without_ground_or_second_view_gives_none():
    views = make_views(0, views=TWO_VIEWS[:1], n=300)
    assert estimate_metric_pose(views, K) is None


def test_pure_outliers_give_none():
    rng = np.random.default_rng(3)
    views = [ViewCorrespondences(rng.uniform(0, 320, (80, 2)), rng.uniform(0, 240, (80, 2)),
                                 np.array([x, y, 2.0]), yaw, K) for x, y, yaw in TWO_VIEWS]
    assert estimate_metric_pose(views, K) is None


def test_degenerate_single_view_does_not_raise():
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 320, (6, 2))
    same = [ViewCorrespondences(pts, pts.copy(), np.array([0.0, 0.0, 2.0]), 0.0, K)]
    assert estimate_metric_pose(same, K) is None
    flat = [ViewCorrespondences(np.full((20, 2), 100.0), np.full((20, 2), 50.0),
                                np.array([0.0, 0.0, 2.0]), 0.0, K)]
    assert estimate_metric_pose(flat, K) is None


def test_covariance_gate_and_bad_values():
    views = make_views(0)
    assert estimate_metric_pose(views, K, max_position_sigma_m=1e-4) is None
    assert estimate_metric_pose(views, K, max_yaw_sigma_deg=1e-4) is None
    nan = [ViewCorrespondences(np.full((30, 2), np.nan), v.view_xy[:30], v.view_position,
                               v.view_yaw, K) for v in views]
    assert estimate_metric_pose(nan, K) is None


def test_contract_positional_fields_and_map_frame_offset():
    """Five positional fields as in the contract; large map coordinates change nothing."""
    off = np.array([3512.0, -2210.0, 0.0])
    views = [ViewCorrespondences(v.query_xy, v.view_xy, v.view_position + off, v.view_yaw, K)
             for v in make_views(2)]
    est = estimate_metric_pose(views, K)
    assert est is not None
    assert abs(est.x - off[0] - QUERY[0]) < 0.3 and abs(est.y - off[1] - QUERY[1]) < 0.3


def test_rendered_place_two_map_views():
    """Town renderer, 320x240: two database views 10 m apart, a query 1.5 m on and 0.8 m left."""
    world = pytest.importorskip('vpr_ros.world')
    from vpr_ros.verification import geometry_bench as gb
    town = world.Town.from_seed(101)
    route = world.plan_route(town, 8, 10.0, seed=101)
    x, y, yaw = route.point(route.s[2] + 1.5, 0.8)
    query = world.CameraPose(x, y, 2.2, yaw + route.side_look[2] + math.radians(5),
                             math.radians(5))
    sift, Kr = cv2.SIFT_create(nfeatures=1000), gb.intrinsics((320, 240))
    try:
        renderer = world.Renderer(town, (320, 240), 2)
    except world.RenderError as exc:
        pytest.skip(f'no headless OpenGL: {exc}')
    with renderer as r:
        qf = gb.sift_features(r.render(query, 'day'), sift)
        views = []
        for pose in (route.place_pose(2), route.place_pose(3)):
            qa, ma = gb.verified_matches(qf, gb.sift_features(r.render(pose, 'day'), sift))
            views.append(ViewCorrespondences(qa, ma, np.array([pose.x, pose.y, pose.z]),
                                             pose.yaw, Kr, pose.pitch))
    est = estimate_metric_pose(views, Kr)
    assert est is not None and est.method == 'triangulate+pnp'
    pos, dyaw = _errors(est, (query.x, query.y, query.yaw))
    assert pos < 0.3 and dyaw < 1.0, (pos, dyaw)
