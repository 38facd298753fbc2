"""vpr-ros evaluate --fit-calibration: rows, fit, refusals, and the command on a small town."""
import json

import numpy as np
import pytest

from vpr_ros.evaluation import FrameResult
from vpr_ros.evaluation.calibrate import (calibration_rows, CalibrationFitError, fit_rows,
                                          MIN_FRAMES, published_ece)
from vpr_ros.localization.calibration import Calibration


def _frame(i, raw, sim, err_m, recognised=True, gt=(0.0, 0.0), answered=True):
    return FrameResult(i, float(i), gt=gt, prior=(gt[0] + err_m, 0.0, 0.0) if gt else None,
                       confidence=raw, raw_confidence=raw, similarity=sim,
                       recognised=recognised, answered=answered)


def test_rows_use_the_prior_error_and_skip_uncalibrated_frames():
    frames = [_frame(0, 0.9, 0.8, 3.0), _frame(1, 0.7, 0.2, 30.0),
              _frame(2, 0.0, -1.0, 1.0, recognised=False),  # below the similarity floor
              _frame(3, 0.6, 0.5, 1.0, gt=None), _frame(4, 0.6, 0.5, 1.0, answered=False)]
    raw, sim, correct = calibration_rows(frames, threshold_m=25.0)
    assert raw.tolist() == [0.9, 0.7] and sim.tolist() == [0.8, 0.2]
    assert correct.tolist() == [True, False]
    assert published_ece(frames, 25.0)['frames'] == 2


def test_fit_improves_a_miscalibrated_set():
    rng = np.random.default_rng(0)
    n = 400
    sim = rng.uniform(0.0, 1.2, n)
    raw = rng.uniform(0.6, 1.0, n)          # reports 0.6..1.0 but is right ~half the time
    correct = rng.uniform(size=n) < 0.2 + 0.5 * (raw - 0.6) / 0.4 * np.clip(sim, 0, 1)
    for method in ('platt_sim', 'platt', 'isotonic'):
        fit = fit_rows(raw, sim, correct, method)
        assert fit.calibration.method == method and fit.frames == n
        assert fit.ece_after < 0.5 * fit.ece_before, (method, fit.ece_before, fit.ece_after)
        assert fit.correct == int(correct.sum())


@pytest.mark.parametrize('n, k, why', [(MIN_FRAMES - 1, 5, 'at least'),
                                       (MIN_FRAMES, MIN_FRAMES, 'all 20 frames are correct'),
                                       (30, 0, 'all 30 frames are wrong')])
def test_refuses_too_few_or_one_sided_frames(n, k, why):
    raw = np.linspace(0.1, 0.9, n)
    with pytest.raises(CalibrationFitError, match=why):
        fit_rows(raw, np.ones(n), np.arange(n) < k)


def test_cli_refuses_live_fit_before_running(tmp_path, capsys):
    from vpr_ros.cli import main
    out = tmp_path / 'cal.json'
    assert main(['evaluate', '--map', str(tmp_path / 'nomap'), '--vg', str(tmp_path),
                 '--live', '--fit-calibration', str(out)]) == 2
    assert 'offline' in capsys.readouterr().err and not out.exists()


@pytest.fixture(scope='module')
def town(tmp_path_factory):
    from vpr_ros.cli import main
    root = tmp_path_factory.mktemp('caltown')
    assert main(['world', '--seed', '13', '--out', str(root / 'T'), '--places', '16',
                 '--conditions', 'day', 'dusk', 'night', '--formats', 'vg', '--quiet']) == 0
    assert main(['build-map', '--model', 'efficientnet_lite0_vpr', '--input',
                 str(root / 'T' / 'test' / 'database'), '--out', str(root / 'M'),
                 '--no-progress']) == 0
    return root


def test_fit_on_a_town_then_apply_it(town, tmp_path, capsys):
    from vpr_ros import params_file
    from vpr_ros.cli import main
    from vpr_ros.share import share_dir
    base = ['evaluate', '--map', str(town / 'M'), '--vg', str(town / 'T' / 'test' / 'queries'),
            '--threads', '1', '--no-plots']
    few = tmp_path / 'few'  # refused: nothing written
    assert main(base + ['--out', str(few), '--max-frames', '10',
                        '--fit-calibration', str(few / 'cal.json')]) == 2
    assert 'cannot fit a calibration' in capsys.readouterr().err and not few.exists()

    out = tmp_path / 'R'
    assert main(base + ['--out', str(out), '--fit-calibration', str(out / 'cal.json')]) == 0
    printed = capsys.readouterr().out
    cal = Calibration.load(out / 'cal.json')
    assert cal.method == 'platt_sim'
    assert 'ECE before' in printed and 'in-sample' in printed
    rep = json.loads((out / 'report.json').read_text())
    fit = rep['calibration_fit']
    assert fit['method'] == 'platt_sim' and fit['frames'] >= MIN_FRAMES and fit['in_sample']
    assert fit['ece_before'] == pytest.approx(rep['confidence']['calibration']['ece'])
    md = (out / 'report.md').read_text()
    assert 'ECE before' in md and 'after' in md and 'in-sample' in md
    after = float(printed.split('after ')[1].split(';')[0])

    params = params_file.load(share_dir() / 'config' / 'localize.yaml')
    yaml = params_file.dump(params_file.set_node_params(
        params, 'matcher', {'calibration_file': str(out / 'cal.json')}), tmp_path / 'p.yaml')
    out2 = tmp_path / 'R2'
    assert main(base + ['--out', str(out2), '--params-file', yaml]) == 0
    rep2 = json.loads((out2 / 'report.json').read_text())
    assert rep2['matcher']['calibration_file'] == str(out / 'cal.json')
    # the same frames, now calibrated by the matcher: the in-sample 'after' figure
    assert rep2['confidence']['calibration']['frames'] == fit['frames']
    assert rep2['confidence']['calibration']['ece'] == pytest.approx(after, abs=1e-6)
    assert rep2['confidence']['calibration']['ece'] == pytest.approx(fit['ece_after'],
                                                                     abs=1e-9)
