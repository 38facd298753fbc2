"""Units of evaluation.frames / coverage / metrics.top1_within and --help defaults."""
import math
import re
import types

import numpy as np
import pytest

from vpr_ros.evaluation import coverage, EvalConfig, FrameResult, metrics as mx
from vpr_ros.evaluation.frames import choose_pose_topic, fit_rigid2d, MapGeo, nearest_distances

ODOM, FIX = 'nav_msgs/msg/Odometry', 'sensor_msgs/msg/NavSatFix'
IMG = 'sensor_msgs/msg/CompressedImage'


def test_fit_rigid2d_recovers_rotation_and_shift():
    rng = np.random.default_rng(0)
    src = rng.uniform(-50, 50, (30, 2))
    th = math.radians(33.0)
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    dst = src @ rot.T + [120.0, -7.0]
    dst[3] = np.nan  # ignored
    fit = fit_rigid2d(src, dst)
    assert fit.theta == pytest.approx(th, abs=1e-9) and fit.pairs == 29
    assert np.allclose(fit.apply(src[:3]), dst[:3]) and fit.rms_m < 1e-9
    one = fit_rigid2d(src[:1], src[:1] + 5.0)  # one point: a shift, no rotation
    assert one.theta == 0.0 and (one.tx, one.ty) == (5.0, 5.0)
    with pytest.raises(ValueError):
        fit_rigid2d(np.full((2, 2), np.nan), np.zeros((2, 2)))


def test_map_geo_from_place_latlon_without_origin():
    """A map in a rotated local frame with per-place lat/lon: lat/lon -> its x, y."""
    from vpr_ros.geo import MapOrigin
    anchor = MapOrigin.from_latlon(47.37, 8.54)
    enu = np.array([[0, 0], [40, 0], [40, 60], [-20, 30.0]])
    ll = anchor.xy_to_latlon(enu)
    th = math.radians(-20.0)
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    xy = enu @ rot.T + [3.0, 4.0]
    places = [types.SimpleNamespace(lat=a, lon=o) for a, o in ll]
    store = types.SimpleNamespace(num_places=4, get_places=lambda ids: [places[i] for i in ids],
                                  positions=lambda ids: np.c_[xy[ids], np.zeros(len(ids))])
    geo = MapGeo.of_map({'origin': None}, store)
    assert geo is not None and 'lat/lon of 4 map places' in geo.how
    assert np.allclose(geo.latlon_to_xy(ll[:, 0], ll[:, 1]), xy, atol=0.05)
    nolatlon = types.SimpleNamespace(num_places=1, positions=store.positions,
                                     get_places=lambda ids: [types.SimpleNamespace(
                                         lat=math.nan, lon=math.nan)])
    assert MapGeo.of_map({}, nolatlon) is None
    assert 'UTM 32T' in MapGeo.of_map({'origin': anchor.__dict__}).how


def test_choose_pose_topic():
    both = {'/cam': IMG, '/odom': ODOM, '/gps/fix': FIX}
    assert choose_pose_topic(both, '/odom', True) == ('/odom', 'given with --pose-topic')
    topic, why = choose_pose_topic(both, '', True)
    assert topic == '/gps/fix' and 'geo-referenced' in why and '--pose-topic' in why
    topic, why = choose_pose_topic(both, '', False)
    assert topic == '/odom' and 'no geo reference' in why
    assert choose_pose_topic({'/cam': IMG, '/odom': ODOM}, '', True)[0] == ''
    two_odom = {'/a': ODOM, '/b': ODOM, '/gps/fix': FIX}
    assert choose_pose_topic(two_odom, '', False) == ('', 'ambiguous')


def test_nearest_distances_and_top1_within():
    d = nearest_distances([[0, 0], [10, 0]], [[0, 3], [np.nan, 0], [10, 4]])
    assert np.allclose(d, [3, 4])
    assert np.isinf(nearest_distances([[0, 0]], np.zeros((0, 2)))).all()
    w = mx.top1_within([1.0, 7.0, 20.0, np.nan], (5, 10, 25))
    assert w == {'5': 0.25, '10': 0.5, '25': 0.75}


def _frame(i, gt, top1, cond=''):
    return FrameResult(i, float(i), condition=cond, gt=gt, ids=np.array([0]),
                       scores=np.array([1.0]), cand_xy=np.array([top1], float),
                       cand_yaw=np.zeros(1), answered=True)


def test_coverage_section_and_problems():
    cfg = EvalConfig(bag='/data/dusk_run', threshold_m=25.0, outside_map_m=50.0)
    frames = [_frame(0, (0.0, 0.0), (3.0, 4.0)), _frame(1, (100.0, 0.0), (0.0, 0.0), 'night')]
    correct = np.array([[True], [False]])
    sec = coverage.section(frames, cfg, {'map_geo': 'g'}, np.array([[0.0, 0.0]]), correct)
    assert sec['r1_within_m'] == {'5': 0.5, '10': 0.5, '25': 0.5}
    assert set(sec['recall_at_by_condition']) == {'dusk_run', 'night'}
    assert sec['ground_truth_vs_map']['nearest_place_m']['p50'] == pytest.approx(50.0)
    rep = {'num_queries': 2, 'num_frames': 2, 'threshold_m': 25.0, **sec}
    assert coverage.problems(rep, {}) == []  # 50 m is not beyond 50 m
    sec['ground_truth_vs_map']['nearest_place_m']['p50'] = 80.0
    assert 'far outside the map' in coverage.problems(rep, {})[0]
    sec['ground_truth_vs_map']['outside_map_m'] = 0  # off
    assert coverage.problems(rep, {}) == []
    assert 'none of the 3 frames' in coverage.problems(
        {'num_queries': 0, 'num_frames': 3}, {})[0]
    assert any('R@1 within' in line for line in coverage.markdown(rep))


@pytest.mark.parametrize('argv, text', [
    (['kidnap-eval', '--help'], '(default: 10)'),       # a plain argparse flag
    (['config', 'dump', '--help'], "(default: '')"),     # a sub-parser
    (['evaluate', '--help'], '(default: 50.0)'),         # a dataclass flag
])
def test_help_shows_defaults(argv, text, capsys):
    from vpr_ros.cli import main
    with pytest.raises(SystemExit):
        main(argv)
    out = capsys.readouterr().out
    flat = ' '.join(out.split())
    assert text in flat
    assert not re.search(r'\(default: [^()]*\) \(default:', flat)  # never twice
