"""Evaluation metrics against values computed by hand on small arrays."""
import math

import numpy as np
import pytest

from vpr_ros.evaluation import FrameResult
from vpr_ros.evaluation import metrics as mx
from vpr_ros.evaluation.report import judge, latency_summary

GT = [(0.0, 0.0), (100.0, 0.0)]
CAND = [[(10.0, 0.0), (30.0, 0.0)], [(0.0, 0.0), (120.0, 0.0)]]


def test_recall_within_distance():
    c = mx.correct_matrix(GT, CAND, 25.0)
    assert c.tolist() == [[True, False], [False, True]]
    assert mx.recall_at(c, (1, 2)) == {'1': 0.5, '2': 1.0}
    # 25 m exactly is correct, 25.01 m is not
    edge = mx.correct_matrix([(0, 0)], [[(25.0, 0.0), (0.0, 25.01)]], 25.0)
    assert edge.tolist() == [[True, False]]


def test_recall_with_yaw_threshold():
    yaw_gt = [0.0, math.pi]
    yaw_c = [[math.pi / 2, 0.0], [0.0, 3.1]]
    c = mx.correct_matrix(GT, CAND, 25.0, yaw_gt, yaw_c, yaw_threshold_deg=45.0)
    assert c.tolist() == [[False, False], [False, True]]  # 90 deg off; 3.1 vs pi wraps to 2 deg
    assert mx.recall_at(c, (1, 2)) == {'1': 0.0, '2': 0.5}
    # unknown ground-truth heading: the yaw test is skipped for that query
    c = mx.correct_matrix(GT, CAND, 25.0, [np.nan, math.pi], yaw_c, 45.0)
    assert c.tolist() == [[True, False], [False, True]]


def test_missing_candidates_and_dropped_queries_are_wrong():
    c = mx.correct_matrix([(0, 0), (0, 0)], [[(1, 0), (np.nan, np.nan)],
                                             [(np.nan, np.nan)] * 2], 25.0)
    assert c.tolist() == [[True, False], [False, False]]
    assert mx.recall_at(c, (1, 5)) == {'1': 0.5, '5': 0.5}
    assert mx.recall_at(np.zeros((0, 3), bool)) == {'1': 0.0, '5': 0.0, '10': 0.0}


def test_angle_diff_wraps():
    assert mx.angle_diff(3.0, -3.0) == pytest.approx(2 * math.pi - 6.0)
    assert mx.angle_diff(0.1, -0.1) == pytest.approx(0.2)


def test_percentiles():
    p = mx.percentiles([4.0, 1.0, 3.0, 2.0, np.nan])
    assert p == pytest.approx({'p50': 2.5, 'p90': 3.7, 'p99': 3.97})
    assert mx.percentiles([]) == {'p50': None, 'p90': None, 'p99': None}
    assert mx.percentiles([5.0], (95,)) == {'p95': 5.0}


def test_precision_recall_and_average_precision():
    conf, ok = [0.9, 0.8, 0.7, 0.6], [True, False, True, False]
    p, r, t = mx.precision_recall(conf, ok)
    assert p == pytest.approx([1.0, 0.5, 2 / 3, 0.5])
    assert r == pytest.approx([0.5, 0.5, 1.0, 1.0])
    assert t == pytest.approx(conf)
    assert mx.average_precision(conf, ok) == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)
    # trapezoids: (0->.5) at 1, (.5->1) between .5 and 2/3
    assert mx.pr_auc(conf, ok) == pytest.approx(0.5 + 0.5 * (0.5 + 2 / 3) / 2)
    # the input order does not matter
    assert mx.average_precision(conf[::-1], ok[::-1]) == pytest.approx(5 / 6)


def test_precision_recall_ties_are_accepted_together():
    p, r, t = mx.precision_recall([0.9, 0.9, 0.5], [True, False, True])
    assert t.tolist() == [0.9, 0.5]
    assert p == pytest.approx([0.5, 2 / 3]) and r == pytest.approx([0.5, 1.0])
    assert mx.average_precision([0.9, 0.9, 0.5], [True, False, True]) == pytest.approx(
        0.5 * 0.5 + 0.5 * 2 / 3)
    assert math.isnan(mx.average_precision([], []))


def test_operating_point_at_min_confidence():
    op = mx.operating_point([0.9, 0.8, 0.7, 0.6], [True, False, True, False], 0.65)
    assert op['accepted'] == 3
    assert op['precision'] == pytest.approx(2 / 3) and op['recall'] == 1.0
    assert op['accepted_fraction'] == 0.75
    none = mx.operating_point([0.1], [True], 0.5)
    assert none['precision'] is None and none['recall'] == 0.0


def test_grouped_recall_by_condition():
    c = np.array([[True], [False], [True], [True]])
    g = mx.grouped_recall(['night', 'night', 'fog', ''], c, (1,))
    assert g == {'fog': {'num_queries': 1, 'recall_at': {'1': 1.0}},
                 'night': {'num_queries': 2, 'recall_at': {'1': 0.5}}}


def test_judge_frames_and_latency_summary():
    f1 = FrameResult(0, 0.0, gt=(0.0, 0.0), gt_yaw=0.0, ids=np.array([3, 4]),
                     cand_xy=np.array([[40.0, 0.0], [5.0, 0.0]]), cand_yaw=np.zeros(2),
                     answered=True, latency_ms={'encode': 10.0})
    f2 = FrameResult(1, 0.1, gt=(0.0, 0.0), latency_ms={'encode': 20.0})  # dropped
    c = judge([f1, f2], 25.0)
    assert c.shape == (2, 10)
    assert mx.recall_at(c, (1, 2)) == {'1': 0.0, '2': 0.5}
    lat = latency_summary([f1, f2])
    assert lat['encode']['p50'] == pytest.approx(15.0) and lat['encode']['count'] == 2
    assert lat['encode']['p95'] == pytest.approx(19.5)


def test_db_growth_adds_distractors_that_never_match():
    from vpr_ros.experiments.asym.recall import Split, db_growth
    rng = np.random.default_rng(0)
    db = np.eye(8, dtype=np.float32)
    q = db + 0.05 * rng.standard_normal(db.shape).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    xy = np.stack([np.arange(8) * 100.0, np.zeros(8)], axis=1)
    split = Split([''] * 8, xy, [''] * 8, xy, ['day'] * 8)
    # distractors: copies of the queries themselves, so each ranks above its true match
    rows = db_growth(q, db, split, distractors=q[:4].copy(), fractions=(0.0, 1.0))
    assert [r['db_images'] for r in rows] == [8, 12]
    assert rows[0]['R@1'] == 100.0
    assert rows[1]['R@1'] == 50.0 and rows[1]['distractors'] == 4
