"""The one Localizer: the matcher node, `vpr-ros evaluate` and `vpr-ros kidnap-eval` step the
same object, so a per-frame setting (hubness, calibration, filter) reaches all three."""
import dataclasses
import math

import numpy as np
import pytest

from node_fixtures import build_test_map, place_images
from vpr_ros.config import MatcherConfig
from vpr_ros.localization.calibration import Calibration
from vpr_ros.localization.kidnap_eval import EvalFrame, run_filter, run_single
from vpr_ros.localization.localizer import Localizer

SPACING = 30.0


@pytest.fixture(scope='module')
def world(tmp_path_factory, test_model):
    from vpr_ros.models.runtime import load_encoder
    model, size = test_model
    tmp = tmp_path_factory.mktemp('localizer')
    images = place_images(5, seed=21)
    descs = build_test_map(tmp / 'map', model, size, images, spacing_m=SPACING)
    return {'map': str(tmp / 'map'), 'descs': descs, 'tmp': tmp,
            'encoder': load_encoder(model=model, input_size=tuple(size))}


def test_step_finds_the_place_and_reads_each_place_once(world, monkeypatch):
    loc = Localizer(MatcherConfig(map_path=world['map'], top_k=3, use_filter=False)).open()
    calls = []
    real = loc.store.get_places
    monkeypatch.setattr(loc.store, 'get_places', lambda ids: calls.append(ids) or real(ids))
    m = loc.step(world['descs'][2], 1.0, k=5)
    assert m.ids.size == 5 and m.ids[0] == 2 and len(calls) == 1
    assert m.positions[0, 0] == pytest.approx(2 * SPACING)
    assert m.places[0].id == 2 and m.estimate.localized
    assert m.estimate.x == pytest.approx(2 * SPACING, abs=1e-3)
    loc.close()


def test_calibration_reaches_the_kidnap_evaluation(world):
    """kidnap-eval used to bypass the tracker: calibration did not apply there."""
    calib = Calibration('platt', a=0.5, b=-1.0).save(world['tmp'] / 'calib.json')
    loc = Localizer(MatcherConfig(map_path=world['map'], use_filter=False)).open()
    frames = []
    for i in range(5):
        m = loc.search(world['descs'][i], float(i))
        frames.append(EvalFrame(float(i), (i * SPACING, 0.0), m.scores, m.positions, m.yaws,
                                (SPACING, 0.0, 0.0)))
    loc.close()
    plain = MatcherConfig()
    calibrated = dataclasses.replace(plain, calibration_file=str(calib))
    for run in (run_single, run_filter):
        a, b = run(frames, plain), run(frames, calibrated)
        assert np.allclose(a['raw_confidence'], b['raw_confidence'])
        assert not np.allclose(a['confidence'], b['confidence'])


def test_impossible_map_rows_are_dropped_with_a_reason(world, monkeypatch):
    """A map written before positions were validated may hold x = 1e308: such rows are
    dropped (said why), and the estimate stays finite."""
    loc = Localizer(MatcherConfig(map_path=world['map'], top_k=3, use_filter=False)).open()
    real = loc.store.get_places

    def poisoned(ids):
        places = real(ids)
        for p in places:
            if p.id == 1:
                p.x = 1e308
        return places
    monkeypatch.setattr(loc.store, 'get_places', poisoned)
    m = loc.step(world['descs'][1], 0.0, k=5)
    assert 1 not in m.ids.tolist() and 'beyond' in m.problem and m.ids.size == 4
    assert m.estimate is not None and math.isfinite(m.estimate.x)
    loc.close()


DEGENERATE = {'black': np.zeros((96, 128, 3), np.uint8),
              'white': np.full((96, 128, 3), 255, np.uint8),
              'gray': np.full((96, 128, 3), 128, np.uint8),
              'noise': np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8),
              '1x1': np.full((1, 1, 3), 90, np.uint8)}


@pytest.mark.parametrize('use_filter', [False, True])
def test_degenerate_frames_give_no_localized_prior(world, use_filter):
    loc = Localizer(MatcherConfig(map_path=world['map'], use_filter=use_filter)).open()
    assert loc.levels.unrelated < loc.similarity_floor < loc.levels.nearest
    for i in range(40):  # real frames of a standing robot: localized, the filter converges
        m = loc.step(world['descs'][1], float(i), odom_delta=(0.0, 0.0, 0.0))
    assert m.estimate.localized
    for name, img in DEGENERATE.items():
        m = loc.step(world['encoder'].encode(img)[0], 10.0, odom_delta=(0.0, 0.0, 0.0))
        assert not m.estimate.localized and m.estimate.confidence == 0.0, name
        assert 'unrecognised frame' in m.problem, name
    m = loc.step(world['descs'][1], 11.0, odom_delta=(0.0, 0.0, 0.0))  # tracking resumes
    assert m.estimate.localized and m.problem == ''
    loc.close()


def test_min_similarity_overrides_the_map_level(world):
    loc = Localizer(MatcherConfig(map_path=world['map'], min_similarity=-2.0)).open()
    assert loc.similarity_floor == -2.0
    m = loc.step(world['encoder'].encode(DEGENERATE['black'])[0], 0.0)
    assert m.problem == '' and m.estimate is not None
    loc.close()
