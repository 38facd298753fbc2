"""Paired comparison of two systems on the same queries, against values worked out by hand."""
import math

import numpy as np
import pytest

from vpr_ros.evaluation.paired import (
    clearly_above, describe, mcnemar_p, paired_against, paired_difference)
from vpr_ros.experiments.asym.report import floors, markdown


def test_mcnemar_exact_values():
    # 2 vs 0 discordant: P(X <= 0) = 1/4 each tail -> 0.5; 5 vs 0: 2 / 32 = 0.0625.
    assert mcnemar_p(2, 0) == pytest.approx(0.5)
    assert mcnemar_p(0, 5) == pytest.approx(0.0625)
    # 7 vs 3 of 10: 2 * (1 + 10 + 45 + 120) / 1024.
    assert mcnemar_p(7, 3) == pytest.approx(2 * 176 / 1024)
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(3, 3) == 1.0  # an even split is capped at 1
    # thousands of discordant queries do not underflow
    assert 0.0 < mcnemar_p(2600, 2400) < 0.01


def test_paired_difference_counts_and_interval():
    a = np.array([1, 1, 0, 1, 1, 0, 1, 1], bool)
    b = np.array([1, 0, 0, 0, 1, 1, 1, 1], bool)
    d = paired_difference(a, b, n_boot=4000)
    assert d['diff'] == pytest.approx(100 * (6 - 5) / 8)
    assert (d['only_a'], d['only_b'], d['queries']) == (2, 1, 8)
    assert d['p'] == pytest.approx(mcnemar_p(2, 1))
    # per-query differences are in {-1, 0, 1}: the interval lies within them and around diff
    assert -100 <= d['ci_low'] <= d['diff'] <= d['ci_high'] <= 100
    assert d['ci_low'] < 0 < d['ci_high']  # 1 query of 8 is no evidence


def test_identical_systems_have_a_zero_width_interval():
    a = np.array([1, 0, 1, 1], bool)
    d = paired_difference(a, a)
    assert (d['diff'], d['ci_low'], d['ci_high'], d['p']) == (0.0, 0.0, 0.0, 1.0)
    assert not clearly_above(d)


def test_a_large_consistent_gain_is_clearly_above():
    rng = np.random.default_rng(0)
    b = rng.random(2000) < 0.80
    a = b | (rng.random(2000) < 0.5)  # ours right wherever b is, and on half the rest
    d = paired_difference(a, b)
    assert d['only_b'] == 0 and d['diff'] > 5 and d['ci_low'] > 0
    assert clearly_above(d) and not clearly_above(d, margin=50.0)
    assert describe(d).startswith(f'+{d["diff"]:.1f} points (95% CI')


def test_bootstrap_is_chunked_for_many_queries():
    rng = np.random.default_rng(1)
    a, b = rng.random(50_000) < 0.6, rng.random(50_000) < 0.6
    d = paired_difference(a, b, n_boot=300)
    se = 100 * math.sqrt(0.48 / 50_000)  # sd of a per-query difference of two independent
    assert d['ci_high'] - d['ci_low'] == pytest.approx(2 * 1.96 * se, rel=0.2)


def test_mismatched_hits_are_refused():
    with pytest.raises(ValueError, match='equal'):
        paired_difference(np.ones(3, bool), np.ones(4, bool))


def test_floor_needs_the_interval_above_zero_and_report_shows_it():
    ours = np.r_[np.ones(95), np.zeros(5)].astype(bool)
    student = np.r_[np.ones(92), np.zeros(8)].astype(bool)  # +3 points, 3 queries only ours
    paired = paired_against({'ours_asym': ours, 'symmetric_student': student}, 'ours_asym')
    assert set(paired) == {'symmetric_student'}
    rec = {k: {'all': {'R@1': 100 * v.mean(), 'R@5': 100.0, 'R@10': 100.0}}
           for k, v in (('ours_asym', ours), ('symmetric_student', student))}
    rep = {'recall': rec, 'paired_r1': paired}
    (floor,) = [f for f in floors(rep) if 'student' in f['floor']]
    # p = 2 / 8 = 0.25: three points above, but three queries are no evidence
    assert paired['symmetric_student']['p'] == pytest.approx(0.25)
    assert paired['symmetric_student']['ci_low'] <= 0 and not floor['ok']
    assert '95% CI' in floor['measured']
    md = markdown(rep)
    assert '| ours minus | points | 95% CI |' in md and '| +3.0 |' in md
    # without per-query hits (an old report) the floor falls back to the 2-point margin
    assert [f for f in floors({'recall': rec}) if 'student' in f['floor']][0]['ok']


def test_place_bootstrap_widens_the_interval_of_correlated_queries():
    # 40 places x 4 conditions, hits shared within a place: 4 copies of one draw each
    rng = np.random.default_rng(2)
    a, b = np.repeat(rng.random(40) < 0.7, 4), np.repeat(rng.random(40) < 0.7, 4)
    place = np.repeat(np.arange(40), 4)
    by_query = paired_difference(a, b, n_boot=4000)
    by_place = paired_difference(a, b, n_boot=4000, groups=place)
    assert by_place['diff'] == by_query['diff'] and by_place['p'] == by_query['p']
    assert (by_place['resampled'], by_place['groups'], by_query['resampled']) == \
        ('places', 40, 'queries')
    wq, wp = (d['ci_high'] - d['ci_low'] for d in (by_query, by_place))
    assert wp == pytest.approx(2 * wq, rel=0.25)  # sqrt(4) wider: 40 draws, not 160
    with pytest.raises(ValueError, match='one group per query'):
        paired_difference(a, b, groups=place[:-1])


def test_nearest_place_in_chunks():
    from vpr_ros.evaluation.paired import nearest_place
    db = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    q = np.array([[1.0, 1.0], [9.0, -2.0], [-1.0, 8.0], [6.0, 0.0]])
    assert nearest_place(q, db).tolist() == [0, 1, 2, 1]
    many = np.tile(q, (300_000, 1))  # more rows than one distance block
    assert nearest_place(many, db).tolist() == [0, 1, 2, 1] * 300_000
    assert nearest_place(np.zeros((0, 2)), db).size == 0
