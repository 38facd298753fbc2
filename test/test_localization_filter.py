"""PlaceFilter: localizing, tracking, outlier rejection, kidnap recovery, reset, covariance."""
import math

import numpy as np
import pytest

from vpr_ros.localization import FilterConfig, PlaceFilter
from vpr_ros.localization.hypotheses import Hypotheses, merge, prune
from vpr_ros.retrieval import summarize_candidates

N_PLACES = 100   # a straight street, a place every 10 m along x, all facing +x
PLACES = np.stack([np.arange(N_PLACES) * 10.0, np.zeros(N_PLACES), np.zeros(N_PLACES)], 1)
YAWS = np.zeros(N_PLACES)


def candidates(x, k=5):
    """Top-k of a frame at (x, 0): the k nearest places, clearly ranked (best first)."""
    idx = np.argsort(np.abs(PLACES[:, 0] - x), kind='stable')[:k]
    return np.linspace(0.80, 0.70, k), PLACES[idx], YAWS[idx]


STEP = FilterConfig().decorrelation_m   # metres per frame: every frame is full evidence
FWD = (STEP, 0.0, 0.0)


def feed(flt, x, odom=FWD, k=5):
    return flt.step(*candidates(x, k), odom=odom, num_places=N_PLACES)


def drive(flt, x0, frames, step=STEP):
    """Drive along the street from x0 (first frame without odometry); all estimates."""
    return [feed(flt, x0 + step * t, None if t == 0 else (step, 0.0, 0.0))
            for t in range(frames)]


def test_consistent_candidates_localize_after_enter_frames_at_the_right_place():
    cfg = FilterConfig()
    flt = PlaceFilter(cfg)
    states = drive(flt, 200.0, 6)
    first = next(i for i, e in enumerate(states) if e.localized)
    # the confidence first reaches enter_confidence on frame 1 or 2; n frames later: localized
    assert cfg.enter_frames <= first <= cfg.enter_frames + 1
    assert states[0].status == 'lost' and not states[0].localized
    assert states[1].status == 'localizing'
    e = states[-1]
    assert e.status == 'localized' and e.confidence >= cfg.enter_confidence
    assert abs(e.x - (200.0 + 5 * STEP)) < 5.0 and abs(e.y) < 1.0 and abs(e.yaw) < 0.1
    assert sum(s.relocalized for s in states) == 1 and states[first].relocalized


def test_frames_of_the_same_view_count_less_than_frames_far_apart():
    slow = drive(PlaceFilter(FilterConfig()), 200.0, 20, step=STEP / 5)
    fast = drive(PlaceFilter(FilterConfig()), 200.0, 20)
    first_slow = next(i for i, e in enumerate(slow) if e.localized)
    first_fast = next(i for i, e in enumerate(fast) if e.localized)
    assert first_slow > first_fast
    assert slow[1].confidence < fast[1].confidence


def test_tracks_motion_with_odometry_between_places():
    e = drive(PlaceFilter(FilterConfig()), 100.0, 30, step=2.0)[-1]
    assert e.localized and abs(e.x - 158.0) < 6.0
    # odometry alone (the same frame's candidates) moves the estimate forward 20 m
    flt2 = PlaceFilter(FilterConfig())
    for t in range(10):
        feed(flt2, 300.0, None if t == 0 else (0.0, 0.0, 0.0))
    before = flt2.last_estimate.x
    flt2.predict((20.0, 0.0, 0.0))
    after = flt2.update(*candidates(320.0), num_places=N_PLACES)
    assert after.x - before == pytest.approx(20.0, abs=3.0)
    assert not after.relocalized


def test_single_outlier_frame_does_not_move_a_localized_estimate():
    flt = PlaceFilter(FilterConfig())
    before = drive(flt, 300.0, 10)[-1]
    outlier = candidates(800.0)
    e = flt.step(*outlier, odom=FWD, num_places=N_PLACES)
    single = summarize_candidates(*outlier)
    assert single.confidence > 0.5 and abs(single.x - 800.0) < 10.0  # retrieval would jump
    assert e.localized and not e.relocalized
    assert abs(e.x - before.x - STEP) < 3.0                           # the filter does not
    e = feed(flt, 300.0 + 11 * STEP)
    assert e.localized and abs(e.x - (300.0 + 11 * STEP)) < 6.0


def test_kidnap_relocalizes_within_bounded_frames_with_exactly_one_event():
    cfg = FilterConfig()
    flt = PlaceFilter(cfg)
    drive(flt, 100.0, 10)
    events, first_right, wrong = [], None, 0
    for t in range(12):   # carried to x=600; wheel odometry keeps reading the same steps
        e = feed(flt, 600.0 + STEP * t)
        events.append(e.relocalized)
        wrong += e.localized and abs(e.x - (600.0 + STEP * t)) > 25.0
        if first_right is None and e.localized and abs(e.x - (600.0 + STEP * t)) < 25.0:
            first_right = t
    # the old mode fades within a few frames, then enter_frames at the new place
    assert first_right is not None and first_right <= cfg.enter_frames + 4
    assert sum(events) == 1 and events[first_right]
    assert wrong <= 2   # the old place is still published until the evidence turns
    assert abs(flt.last_estimate.x - (600.0 + 11 * STEP)) < 6.0


def test_reset_returns_to_lost():
    flt = PlaceFilter(FilterConfig())
    assert drive(flt, 200.0, 6)[-1].localized
    flt.reset()
    assert flt.last_estimate is None and not flt.localized and len(flt.h) == 0
    e = feed(flt, 500.0, None)
    assert not e.localized and e.status != 'localized' and abs(e.x - 500.0) < 15.0


def test_flat_scores_never_localize():
    """Uninformative retrieval (equal scores at random places) must not lock on."""
    rng = np.random.default_rng(3)
    flt = PlaceFilter(FilterConfig())
    for t in range(100):
        idx = rng.choice(N_PLACES, 10, replace=False)
        e = flt.step(np.full(10, 0.5), PLACES[idx], YAWS[idx], odom=(1.0, 0.0, 0.0),
                     num_places=N_PLACES)
        assert not e.localized
    assert e.confidence < 0.5


def _cov_after(spread_m):
    flt = PlaceFilter(FilterConfig())
    pos = np.array([[500.0 + spread_m * o, 0.0, 0.0] for o in (0.0, 1.0, -1.0)])
    for t in range(5):
        e = flt.step([0.8, 0.79, 0.78], pos, np.zeros(3), odom=None if t == 0 else (0, 0, 0),
                     num_places=N_PLACES)
    return e.covariance


def test_covariance_is_spd_and_grows_when_candidates_disagree():
    agree, disagree = _cov_after(0.0), _cov_after(12.0)
    for cov in (agree, disagree):
        assert cov.shape == (6, 6) and np.allclose(cov, cov.T)
        assert np.all(np.linalg.eigvalsh(cov) > 0)
        assert cov[2, 2] >= 1e6 and cov[3, 3] >= 1e6 and cov[4, 4] >= 1e6  # unobserved
    assert disagree[0, 0] > agree[0, 0] + 10.0          # spread along x, the street
    assert agree[0, 0] >= FilterConfig().base_position_std_m ** 2


def test_belief_stays_sparse_on_a_large_map():
    cfg = FilterConfig(max_hypotheses=50)
    flt = PlaceFilter(cfg)
    rng = np.random.default_rng(0)
    big = rng.uniform(0, 5000, (100000, 3)) * [1, 1, 0]
    for _ in range(30):
        idx = rng.choice(len(big), 20, replace=False)
        e = flt.step(np.sort(rng.uniform(0.4, 0.6, 20))[::-1], big[idx], np.zeros(20),
                     odom=(1.0, 0.0, 0.0), num_places=len(big))
        assert e.num_hypotheses <= cfg.max_hypotheses
        assert 0.0 <= e.confidence <= 1.0 and math.isfinite(e.x)


def test_merge_and_prune_keep_mass_and_moments():
    h = Hypotheses(np.array([[0.0, 0.0], [2.0, 0.0], [100.0, 0.0]]), np.ones(3), np.zeros(3),
                   np.zeros(3), np.full(3, 0.1), np.array([0.5, 0.3, 0.2]))
    m = merge(h, 3.0)
    assert len(m) == 2 and m.w.sum() == pytest.approx(1.0)
    i = int(np.argmax(m.w))
    assert m.xy[i, 0] == pytest.approx(0.75) and m.var[i] > 1.0
    p = prune(m, 1, 0.0)
    assert len(p) == 1 and p.w[0] == pytest.approx(0.8)


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        PlaceFilter(FilterConfig(enter_confidence=0.3, exit_confidence=0.5))
    with pytest.raises(ValueError):
        PlaceFilter().update([], np.zeros((0, 3)), [])


def _merge_reference(h, radius):
    """The greedy merge written as a loop over groups (the definition merge vectorises)."""
    from vpr_ros.localization.hypotheses import Hypotheses, wrap
    close = np.linalg.norm(h.xy[:, None] - h.xy[None], axis=2) < radius
    if close.sum() == len(h):  # nothing to merge: returned as it is, in its order
        return h
    free, rows = np.ones(len(h), bool), []
    for i in np.argsort(-h.w, kind='stable'):
        if free[i]:
            m = np.flatnonzero(close[i] & free)
            free[m] = False
            u, tot = h.w[m] / max(h.w[m].sum(), 1e-300), h.w[m].sum()
            if m.size == 1 or tot <= 0:
                rows.append([h.xy[m[0]], h.var[m[0]], h.z[m[0]], h.yaw[m[0]], h.yaw_var[m[0]],
                             h.w[m[0]]])
                continue
            xy = u @ h.xy[m]
            yaw = np.arctan2(u @ np.sin(h.yaw[m]), u @ np.cos(h.yaw[m]))
            rows.append([xy, u @ (h.var[m] + ((h.xy[m] - xy) ** 2).sum(1) / 2), u @ h.z[m], yaw,
                         u @ (h.yaw_var[m] + wrap(h.yaw[m] - yaw) ** 2), tot])
    return Hypotheses(*(np.array(c) for c in zip(*rows)))


def test_vectorised_merge_equals_the_greedy_loop():
    from vpr_ros.localization.hypotheses import Hypotheses, merge, wrap
    rng = np.random.default_rng(4)
    for _ in range(50):
        n = int(rng.integers(2, 200))
        h = Hypotheses(rng.uniform(0, 80, (n, 2)), rng.uniform(0.1, 20, n),
                       rng.uniform(0, 2, n), wrap(rng.uniform(-4, 4, n)),
                       rng.uniform(0.01, 1, n), rng.exponential(1, n) * (rng.random(n) > 0.1))
        got, want = merge(h, 8.0), _merge_reference(h, 8.0)
        assert len(got) == len(want)
        for f in ('xy', 'var', 'z', 'yaw_var', 'w'):
            np.testing.assert_allclose(getattr(got, f), getattr(want, f), atol=1e-9)
        assert np.abs(wrap(got.yaw - want.yaw)).max() < 1e-9
