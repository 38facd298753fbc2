"""Evaluation without silent zeros (issue 34 part 4) on a small rendered town.

A VG map evaluated with the same town's bag (NavSatFix by default, or /odom aligned to it) and a
bag map built from /odom evaluated with the VG queries score like the same-source evaluation;
ground truth far outside the map is a problem (exit 3 with --strict); the report states the
pose-topic choice, fills per-condition recall and R@1 within 5 / 10 / 25 m.
"""
import json
import math
import shutil

import numpy as np
import pytest

from vpr_ros.cli import main

MODEL, SIZE = 'efficientnet_lite0_gem', ['96', '96']
MAX_FRAMES = '24'  # a bag frame every ~0.7 m: 24 cover the first places


def _evaluate(world, map_key, out, *flags):
    code = main(['evaluate', '--map', str(world[map_key]), '--model', MODEL, '--input-size',
                 *SIZE, '--threads', '1', '--plots', 'false', '--out', str(world['tmp'] / out),
                 *flags])
    rep = json.loads((world['tmp'] / out / 'report.json').read_text())
    return code, rep


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('xsource')
    town = tmp / 'town'
    assert main(['world', '--seed', '7', '--out', str(town), '--places', '5', '--conditions',
                 'day,dusk', '--formats', 'vg,bag', '--bag-storage', 'mcap', '--size',
                 '160x120', '--quiet']) == 0
    common = ['--model', MODEL, '--input-size', *SIZE, '--progress', 'false']
    assert main(['build-map', '--source', 'vg', '--input', str(town / 'test'),
                 '--out', str(tmp / 'vg_map'), *common]) == 0
    assert main(['build-map', '--source', 'bag', '--input', str(town / 'bags' / 'dusk_mcap'),
                 '--pose-topic', '/odom', '--out', str(tmp / 'bag_map'), *common]) == 0
    meta = json.loads((town / 'world.json').read_text())
    return {'tmp': tmp, 'town': town, 'vg_map': tmp / 'vg_map', 'bag_map': tmp / 'bag_map',
            'bag': town / 'bags' / 'dusk_mcap', 'queries': town / 'test' / 'queries',
            'meta': meta}


def test_bag_map_keeps_latlon_of_the_navsatfix(world):
    """Places built from /odom carry the bag's NavSatFix lat/lon at their image stamps."""
    from vpr_ros.geo import MapOrigin
    from vpr_ros.mapstore import MapStore
    with MapStore.open(world['bag_map']) as store:
        places = store.get_places(range(store.num_places))
    ll = np.array([[p.lat, p.lon] for p in places])
    assert np.isfinite(ll).all()
    # the world's /odom frame is its origin's UTM frame: lat/lon -> x, y gives the place back
    origin = MapOrigin.from_latlon(world['meta']['origin_lat'], world['meta']['origin_lon'])
    xy = origin.latlon_to_xy(ll[:, 0], ll[:, 1])
    err = np.hypot(*(xy - np.array([[p.x, p.y] for p in places])).T)
    assert err.max() < 0.5, err


def test_cross_source_scores_like_same_source(world):
    """VG map x bag queries (default NavSatFix, forced /odom) and bag map x VG queries."""
    _, same_vg = _evaluate(world, 'vg_map', 'vg_vg', '--vg', str(world['queries']))
    _, vg_bag = _evaluate(world, 'vg_map', 'vg_bag', '--bag', str(world['bag']),
                          '--max-frames', MAX_FRAMES)
    _, vg_odom = _evaluate(world, 'vg_map', 'vg_odom', '--bag', str(world['bag']),
                           '--pose-topic', '/odom', '--max-frames', MAX_FRAMES)
    _, bag_vg = _evaluate(world, 'bag_map', 'bag_vg', '--vg', str(world['queries']))
    _, bag_bag = _evaluate(world, 'bag_map', 'bag_bag', '--bag', str(world['bag']),
                           '--max-frames', MAX_FRAMES)
    base = same_vg['recall_at']['1']
    assert base > 0.5
    for rep in (vg_bag, vg_odom, bag_vg, bag_bag):
        assert rep['problems'] == [], rep['problems']
        assert rep['ground_truth_vs_map']['nearest_place_m']['p50'] < 10.0
        assert rep['recall_at']['1'] >= base - 0.25, rep['recall_at']
    # the pose-topic choice is stated: NavSatFix for geo-referenced maps, or as given
    assert vg_bag['input']['pose_topic'] == '/gps/fix'
    assert 'default: NavSatFix' in vg_bag['ground_truth']['pose_topic_choice']
    assert vg_odom['input']['pose_topic'] == '/odom'
    assert 'aligned to /gps/fix' in vg_odom['ground_truth']['ground_truth_frame']
    assert 'lat/lon of' in bag_vg['ground_truth']['map_geo']  # fitted: no origin
    # per-condition recall is filled (a bag's frames: the bag's name) with R@1 within
    assert set(vg_bag['recall_at_by_condition']) == {'dusk_mcap'}
    assert set(vg_bag['r1_within_m']) == {'5', '10', '25'}
    assert 'r1_within_m' in same_vg['recall_at_by_condition']['dusk']
    assert 'R@1 within' in (world['tmp'] / 'vg_bag' / 'report.md').read_text()


def _shifted_queries(src, dst, de=2000.0):
    """The VG queries renamed 2 km east (UTM kept, lat/lon dropped): another place."""
    from vpr_ros.io.vg import format_vg_name, list_vg_folder
    dst.mkdir(parents=True)
    for r in list_vg_folder(src):
        r2 = type(r)(**{**r.__dict__, 'utm_e': r.utm_e + de, 'lat': math.nan,
                        'lon': math.nan})
        shutil.copy(r.path, dst / format_vg_name(r2, '.jpg'))
    return dst


def test_ground_truth_outside_the_map_is_a_problem(world, capsys):
    far = _shifted_queries(world['queries'], world['tmp'] / 'far' / 'queries')
    code, rep = _evaluate(world, 'vg_map', 'far_run', '--vg', str(far))
    assert code == 0 and rep['problems'] and 'far outside the map' in rep['problems'][0]
    assert rep['problems'][0] in rep['warnings']
    assert rep['ground_truth_vs_map']['nearest_place_m']['p50'] > 1500
    md = (world['tmp'] / 'far_run' / 'report.md').read_text()
    assert '**Problem: the ground truth lies far outside the map' in md
    code, _ = _evaluate(world, 'vg_map', 'far_strict', '--vg', str(far), '--strict')
    assert code == 3
    assert '1 problem' in capsys.readouterr().err


def test_build_map_progress_bar_has_a_total(world, capsys):
    assert main(['build-map', '--source', 'vg', '--input', str(world['town'] / 'test'),
                 '--out', str(world['tmp'] / 'vg_map2'), '--model', MODEL,
                 '--input-size', *SIZE]) == 0
    err = capsys.readouterr().err
    assert '5/5' in err, err[-500:]
