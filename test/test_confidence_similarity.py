"""The calibrated confidence uses the absolute similarity as a soft factor (issue 32.2):
'platt_sim' = logistic on (logit(raw confidence), top-1 similarity relative to the map's
levels), fitted by fit_calibration, applied by the tracker in both matcher paths."""
import numpy as np
import pytest

from vpr_ros.config import MatcherConfig
from vpr_ros.localization.calibration import Calibration, fit_calibration
from vpr_ros.localization.similarity import relative_similarity, SimilarityLevels
from vpr_ros.localization.tracking import LocalizationTracker


def _data(n=4000, seed=0):
    """Frames whose correctness depends on the ranking AND on the similarity."""
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.05, 0.99, n)
    sim = rng.uniform(-0.5, 2.0, n)
    z = 1.2 * np.log(conf / (1 - conf)) + 3.0 * sim - 2.5
    return conf, sim, rng.random(n) < 1 / (1 + np.exp(-z))


def test_relative_similarity_on_the_map_scale():
    lv = SimilarityLevels(unrelated=0.2, nearest=0.6, floor=0.36)
    assert relative_similarity(0.2, lv) == pytest.approx(0.0)
    assert relative_similarity(0.6, lv) == pytest.approx(1.0)
    assert relative_similarity(0.1, lv) == pytest.approx(-0.25)
    assert np.isnan(relative_similarity(0.5, SimilarityLevels(np.nan, np.nan, -np.inf)))


def test_platt_sim_recovers_the_similarity_factor_and_beats_ranking_only():
    from vpr_ros.localization.calibration import expected_calibration_error
    conf, sim, ok = _data()
    cal = fit_calibration(conf, ok, 'platt_sim', similarity=sim)
    assert cal.method == 'platt_sim'
    assert (cal.a, cal.s, cal.b) == pytest.approx((1.2, 3.0, -2.5), abs=0.35)
    plain = fit_calibration(conf, ok, 'platt')
    tconf, tsim, tok = _data(seed=1)
    ll = {}
    for name, p in (('sim', cal.apply(tconf, tsim)), ('plain', plain.apply(tconf))):
        p = np.clip(p, 1e-6, 1 - 1e-6)
        ll[name] = -np.mean(np.where(tok, np.log(p), np.log(1 - p)))
    assert ll['sim'] < ll['plain'] - 0.1
    assert expected_calibration_error(cal.apply(tconf, tsim), tok) < 0.05
    # a large ranking margin at an implausible similarity: low confidence
    assert cal.apply(0.9, -0.5) < 0.3 and cal.apply(0.9, 1.2) > 0.9
    # unknown similarity counts as a typical real match; JSON round trip keeps s
    assert cal.apply(0.8) == pytest.approx(cal.apply(0.8, float('nan')))
    assert cal.apply(0.8, 1.0) == pytest.approx(cal.apply(0.8))
    assert Calibration(**cal.to_dict()).s == cal.s
    with pytest.raises(ValueError, match='relative similarity'):
        fit_calibration(conf, ok, 'platt_sim')


@pytest.mark.parametrize('use_filter', [False, True])
def test_tracker_applies_the_similarity(tmp_path, use_filter):
    path = Calibration('platt_sim', a=0.3, s=6.0, b=-2.0).save(tmp_path / 'cal.json')
    cfg = MatcherConfig(use_filter=use_filter, calibration_file=str(path), min_confidence=0.5)
    scores = np.array([0.9, 0.3, 0.2])
    pos = np.array([[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [200.0, 0.0, 0.0]])
    yaws = np.zeros(3)
    out = {}
    for sim in (1.0, -0.5):
        tr = LocalizationTracker(cfg)
        for i in range(5):
            est = tr.step(float(i), scores, pos, yaws, num_places=50, similarity=sim)
        out[sim] = est
    assert out[1.0].confidence > 0.5 > out[-0.5].confidence
    assert out[1.0].raw_confidence == pytest.approx(out[-0.5].raw_confidence)
    assert out[1.0].localized and not out[-0.5].localized
