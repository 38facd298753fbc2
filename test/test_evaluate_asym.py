"""Recall over held-out splits: pooling several towns, and the gallery-growth rows."""
import numpy as np
import pytest

from vpr_ros.experiments.asym import recall as ev

E = np.eye(2, dtype=np.float32)          # two DB descriptors, one per place
DB_XY = np.array([[0.0, 0.0], [100.0, 0.0]])


def _split(q_x, conds):
    q_xy = np.stack([np.asarray(q_x, float), np.zeros(len(q_x))], axis=1)
    return ev.Split(['a', 'b'], DB_XY, [f'q{i}' for i in range(len(q_x))], q_xy, list(conds))


def test_pooled_recall_counts_every_query_once():
    # town A: both queries right; town B: queries look like place 0, half stand at place 1
    a = _split([0, 100], ['night', 'rain'])
    b = _split([0, 100, 0, 100], ['night', 'night', 'rain', 'rain'])
    sys_a = {'x': {'query': E.copy(), 'db': E}}
    sys_b = {'x': {'query': np.repeat(E[:1], 4, axis=0), 'db': E}}
    pooled = ev.evaluate_splits([sys_a, sys_b], [a, b], radius_m=25.0, ns=(1, 2))['x']
    assert pooled['all']['R@1'] == pytest.approx(100 * 4 / 6)   # 2/2 + 2/4, not (100+50)/2
    assert pooled['all']['num_queries'] == 6
    assert pooled['night']['R@1'] == pytest.approx(100 * 2 / 3)
    assert pooled['all']['R@2'] == 100.0                          # both DB images in the top 2
    single = ev.evaluate_systems(sys_b, b, 25.0, (1, 2))['x']
    assert ev.evaluate_splits([sys_b], [b], 25.0, (1, 2))['x'] == single


def test_pool_growth_weights_by_queries():
    rows_a = [{'distractor_fraction': 0.0, 'db_images': 60, 'distractors': 0, 'queries': 100,
               'R@1': 90.0}, {'distractor_fraction': 1.0, 'db_images': 160, 'distractors': 100,
                              'queries': 100, 'R@1': 50.0}]
    rows_b = [
        {'distractor_fraction': 0.0, 'db_images': 80, 'distractors': 0, 'queries': 300,
         'R@1': 70.0}, {'distractor_fraction': 1.0, 'db_images': 180, 'distractors': 100,
                        'queries': 300, 'R@1': 30.0}]
    pooled = ev.pool_growth([rows_a, rows_b])
    assert [r['R@1'] for r in pooled] == pytest.approx([75.0, 35.0])
    assert [r['db_images'] for r in pooled] == [75, 175]          # what one query searches
    assert [r['queries'] for r in pooled] == [400, 400]
