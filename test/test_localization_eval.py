"""Confidence calibration and the kidnapped-robot evaluation on hand-checkable sequences."""
import json

import numpy as np
import pytest

from vpr_ros.localization import (Calibration, expected_calibration_error, FilterConfig,
                                  fit_calibration, PlaceFilter, reliability_bins,
                                  write_reliability_png)
from vpr_ros.localization.kidnap_eval import (EvalFrame, evaluate_sequence, find_jump,
                                              markdown_table, plot_errors)
from vpr_ros.localization.kidnap_run import wheel_odometry


def overconfident(n, seed):
    """Confidences in [0.5, 1] whose true accuracy is only 0.5 + 0.4 * (conf - 0.5)."""
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.5, 1.0, n)
    return conf, rng.random(n) < 0.5 + 0.4 * (conf - 0.5)


@pytest.mark.parametrize('method', ['platt', 'isotonic'])
def test_calibration_reduces_ece_on_held_out_overconfident_data(method):
    conf, ok = overconfident(4000, 0)
    test_conf, test_ok = overconfident(4000, 1)
    cal = fit_calibration(conf, ok, method)
    before = expected_calibration_error(test_conf, test_ok)
    after = expected_calibration_error(cal.apply(test_conf), test_ok)
    assert before > 0.15          # mean gap is 0.6 * 0.25 = 0.15 by construction
    assert after < 0.03 and after < before / 4
    xs = np.linspace(0, 1, 50)
    assert np.all(np.diff(cal.apply(xs)) >= -1e-12)      # monotone
    assert isinstance(cal.apply(0.9), float)


def test_platt_recovers_a_known_logistic():
    rng = np.random.default_rng(2)
    conf = rng.uniform(0.01, 0.99, 20000)
    logit = np.log(conf / (1 - conf))
    ok = rng.random(conf.size) < 1 / (1 + np.exp(-(0.5 * logit - 0.3)))
    cal = fit_calibration(conf, ok)
    assert cal.a == pytest.approx(0.5, abs=0.05) and cal.b == pytest.approx(-0.3, abs=0.05)
    # separable labels stay finite thanks to the ridge
    sep = fit_calibration([0.2, 0.3, 0.8, 0.9], [False, False, True, True])
    assert np.isfinite(sep.a) and np.isfinite(sep.b) and sep.apply(0.9) > 0.9


def test_json_round_trip_and_identity(tmp_path):
    conf, ok = overconfident(500, 3)
    for method in ('platt', 'isotonic', 'identity'):
        cal = fit_calibration(conf, ok, method)
        path = cal.save(tmp_path / f'{method}.json')
        assert json.loads(path.read_text())['method'] == method
        back = Calibration.load(path)
        assert back == cal
        assert np.allclose(back.apply(conf), cal.apply(conf))
    assert Calibration.load('').apply(0.37) == pytest.approx(0.37)
    (tmp_path / 'bad.json').write_text('{"method": "platt", "slope": 2}')
    with pytest.raises(ValueError):
        Calibration.load(tmp_path / 'bad.json')
    with pytest.raises(ValueError):
        Calibration(method='magic')


def test_reliability_bins_and_png(tmp_path):
    conf, ok = overconfident(300, 4)
    bins = reliability_bins(conf, ok, 10)
    assert sum(b['count'] for b in bins) == 300 and bins[0]['count'] == 0
    assert all(b['lo'] <= b['confidence'] <= b['hi'] for b in bins if b['count'])
    assert expected_calibration_error([1.0, 1.0], [True, True]) == 0.0
    png = write_reliability_png(tmp_path / 'rel.png', {'raw': (conf, ok)})
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_filter_applies_its_calibration(tmp_path):
    path = Calibration('platt', a=1.0, b=-3.0).save(tmp_path / 'cal.json')
    raw = PlaceFilter(FilterConfig())
    cal = PlaceFilter(FilterConfig(), calibration=Calibration.load(path))
    args = ([0.8, 0.7], [[0, 0, 0], [5, 0, 0]], [0.0, 0.0])
    a, b = raw.update(*args), cal.update(*args)
    assert b.raw_confidence == pytest.approx(a.raw_confidence)
    assert b.confidence < a.confidence


# --- kidnap evaluation on a synthetic street: a place every 10 m along x -------------------
PLACES = np.stack([np.arange(100) * 10.0, np.zeros(100), np.zeros(100)], 1)
STEP = FilterConfig().decorrelation_m


def is_outlier(n):
    return n % 7 == 3 and not 30 <= n < 40   # none in the 10 frames after the jump


def kidnap_frames():
    """30 frames from x=100 then 30 from x=600, STEP m and 1 s apart; top-5 = nearest places,
    except on outlier frames whose top-5 sit around x=900 (a confident retrieval error)."""
    frames = []
    for n in range(60):
        x = (100.0 if n < 30 else 600.0 - 30 * STEP) + STEP * n
        at = 900.0 if is_outlier(n) else x
        idx = np.argsort(np.abs(PLACES[:, 0] - at), kind='stable')[:5]
        frames.append(EvalFrame(float(n), (x, 0.0), np.linspace(0.8, 0.7, 5), PLACES[idx],
                                np.zeros(5), None if n == 0 else (STEP, 0.0, 0.0)))
    return frames


def test_evaluate_sequence_on_a_synthetic_kidnap():
    frames = kidnap_frames()
    assert find_jump(frames) == 30
    cfg = FilterConfig(max_speed_mps=2 * STEP)   # frames are 1 s apart
    res = evaluate_sequence(frames, cfg, num_places=len(PLACES), with_runs=True)
    single, filt = res['methods']['single_frame'], res['methods']['filter_odom']
    n_out = sum(map(is_outlier, range(60)))
    # single frame: a prior on every frame, the outlier frames are wrong; frame 30 is right
    assert single['published_fraction'] == 1.0 and single['wrong_priors'] == n_out
    assert single['wrong_prior_rate'] == pytest.approx(n_out / 60)
    assert single['relocalize_frames'] == 0
    # filter: no outlier becomes a prior. After the jump the old place is still published on
    # frames 30 and 31 (its mass fades), the new place passes enter_confidence on frame 33 and
    # is localized enter_frames frames later, on frame 35: one event, 5 frames = 5 s
    assert filt['wrong_priors'] == 2 and filt['wrong_prior_rate'] < single['wrong_prior_rate']
    assert filt['relocalize_frames'] == 2 + cfg.enter_frames
    assert filt['relocalize_s'] == pytest.approx(5.0)
    assert filt['relocalization_events_after_jump'] == 1
    assert filt['published_error_p90_m'] < 10.0 < single['published_error_max_m']
    # without odometry (random walk at max_speed) it still relocalizes, with a lag
    free = res['methods']['filter_no_odom']
    assert free['wrong_priors'] <= 3 and free['relocalize_frames'] <= 2 + cfg.enter_frames
    assert free['published_error_p50_m'] < 10.0
    assert '| wrong priors / published priors |' in markdown_table(res)


def test_error_plot_and_wheel_odometry(tmp_path):
    frames = kidnap_frames()
    res = evaluate_sequence(frames, num_places=len(PLACES), with_runs=True)
    plot_errors(res, [f.stamp for f in frames], tmp_path / 'err.png')
    assert (tmp_path / 'err.png').read_bytes()[:4] == b'\x89PNG'
    poses = np.array([[0, 0, 0], [1, 0, np.pi / 2], [1, 2, np.pi / 2], [50, 50, 0]], float)
    odo = wheel_odometry(poses, noise_frac=0.0, yaw_noise_per_m=0.0, carried_factor=5.0)
    assert odo[0] is None and np.allclose(odo[1], (1, 0, np.pi / 2))
    assert np.allclose(odo[2], (2, 0, 0))          # forward in the robot frame
    assert odo[3] == (0.0, 0.0, 0.0)               # carried: the wheels did not turn
