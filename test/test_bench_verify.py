"""``vpr-ros bench-verify`` end to end on a generated town: a real map with local features, the
real query network, both Localizers; every row a user reads (recall, far answers overall and
among the priors the matcher would publish) is there and is a share."""
import json
import subprocess
import sys

import pytest


@pytest.fixture(scope='module')
def town_map(tmp_path_factory):
    pytest.importorskip('moderngl')
    root = tmp_path_factory.mktemp('bench_verify')
    town, mp = root / 'town', root / 'map'
    cli = [sys.executable, '-m', 'vpr_ros']
    subprocess.run(cli + ['world', '--seed', '11', '--out', str(town), '--places', '8',
                          '--conditions', 'day', 'dusk', '--formats', 'vg', '--quiet'],
                   check=True, timeout=300)
    subprocess.run(cli + ['build-map', '--model', 'efficientnet_lite0_vpr', '--input',
                          str(town / 'test' / 'database'), '--out', str(mp), '--no-progress'],
                   check=True, timeout=300, capture_output=True)
    return mp, town / 'test' / 'queries'


def test_rows_and_published_far_answers(town_map):
    mp, queries = town_map
    out = subprocess.run([sys.executable, '-m', 'vpr_ros', 'bench-verify', '--pair', str(mp),
                          str(queries), '--cost-frames', '0', '--json'],
                         check=True, timeout=600, capture_output=True, text=True).stdout
    res = json.loads(out)['results']
    assert {'global', 'verified', 'verified/dusk'} <= set(res)
    for row in res.values():
        assert row['queries'] == 8
        for key in ('R@1', 'R@1_5m', 'over_100m', 'localized', 'localized_over_100m'):
            assert 0.0 <= row[key] <= 1.0, (key, row)
        assert row['R@1_5m'] <= row['R@1']
    assert res['verified']['verified_share'] > 0   # the map's features were used
    assert res['global']['verified_share'] == 0
