"""Does the absolute similarity help the calibrated confidence? (issue 32, out-of-distribution)

``python -m vpr_ros.experiments.confidence_similarity --out DIR`` renders a town (its map) and
a second town (frames of "another world"), builds the map with a packaged gallery model, and
runs every frame through the matcher's single-frame path without calibration: raw confidence
(ranking) and top-1 similarity relative to the map's levels. It fits 'platt' (ranking only) and
'platt_sim' (ranking + similarity) on half of the places (plus half of the other town's frames
as negatives) and reports, on the other half, ECE, recall (correct frames localized at
min_confidence) and precision, and the false-prior rate on degenerate frames (black, white,
gray, 1x1, noise; never fitted on) with and without the map-level hard gate.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Dict

import numpy as np

DEGENERATE = {'black': np.zeros((120, 160, 3), np.uint8),
              'white': np.full((120, 160, 3), 255, np.uint8),
              'gray': np.full((120, 160, 3), 128, np.uint8),
              '1x1': np.full((1, 1, 3), 90, np.uint8),
              **{f'noise{i}': np.random.default_rng(i).integers(0, 256, (120, 160, 3), np.uint8)
                 for i in range(6)}}


def _frames(encoder, localizer, images, gts, threshold_m):
    """rows of (raw confidence, relative similarity, above the hard floor, correct), as
    ``vpr-ros evaluate --fit-calibration`` gathers them (evaluation.calibrate), but every frame
    reaches the tracker, also those below the floor."""
    from vpr_ros.evaluation.calibrate import frame_similarity, prior_correct
    rows = []
    for rgb, gt in zip(images, gts):
        match = localizer.search(encoder.encode(rgb)[0], 0.0)
        top = slice(0, localizer.cfg.top_k)
        est = localizer.tracker.step(0.0, match.scores[top], match.positions[top],
                                     match.yaws[top], None, localizer.store.num_places)
        _, rel, above = frame_similarity(localizer, match)
        rows.append((est.raw_confidence, rel, above,
                     prior_correct((est.x, est.y), gt, threshold_m)))
    return np.array(rows, np.float64).reshape(-1, 4)


def _vg(folder):
    from vpr_ros.imaging import read_image_file
    from vpr_ros.io.vg import list_vg_folder
    recs = list_vg_folder(folder)
    return [read_image_file(r.path) for r in recs], recs


def _summary(cal, rows, min_conf: float) -> Dict:
    from vpr_ros.localization.calibration import calibration_ece
    conf = np.asarray(cal.apply(rows[:, 0], rows[:, 1]), np.float64).reshape(-1)
    correct = rows[:, 3] > 0
    loc = conf >= min_conf
    return {'ece': round(calibration_ece(cal, rows[:, 0], correct, rows[:, 1]), 4),
            'recall': round(float((loc & correct).sum() / max(correct.sum(), 1)), 4),
            'precision': round(float((loc & correct).sum() / max(loc.sum(), 1)), 4),
            'frames': int(len(rows))}


def _false_priors(cal, rows, min_conf: float, gate: bool) -> float:
    conf = np.asarray(cal.apply(rows[:, 0], rows[:, 1]), np.float64).reshape(-1)
    prior = conf >= min_conf
    if gate:
        prior &= rows[:, 2] > 0
    return round(float(prior.mean()), 4)


def run(out: str, model: str = 'efficientnet_lite0_vpr', places: int = 40,
        threshold_m: float = 12.0, min_conf: float = 0.5) -> Dict:
    """The measurement (see module docstring); writes and returns ``out``/report.json."""
    from vpr_ros.config import MatcherConfig
    from vpr_ros.localization.calibration import Calibration, fit_calibration
    from vpr_ros.localization.localizer import Localizer
    from vpr_ros.mapstore.build import build_map, BuildConfig
    from vpr_ros.models.runtime import load_encoder
    from vpr_ros.world.generate import generate_world, WorldConfig
    root = Path(out)
    for seed in (7, 8):
        if not (root / f'town{seed}' / 'test' / 'queries').is_dir():
            generate_world(WorldConfig(seed=seed, out=str(root / f'town{seed}'), places=places,
                                       conditions=('day', 'dusk', 'night'), formats=('vg',),
                                       progress=False))
    if not (root / 'map' / 'manifest.json').is_file():
        build_map(BuildConfig(model=model, input=str(root / 'town7' / 'test'),
                              out=str(root / 'map'), progress=False))
    enc = load_encoder(model=model)
    loc = Localizer(MatcherConfig(map_path=str(root / 'map'), use_filter=False)).open()
    imgs, recs = _vg(root / 'town7' / 'test' / 'queries')
    from vpr_ros.io.vg import vg_xy
    origin = loc.store.origin
    from vpr_ros.geo import MapOrigin
    xy = vg_xy(recs, MapOrigin(**origin), (origin['easting'], origin['northing']))
    real = _frames(enc, loc, imgs, [tuple(p) for p in xy], threshold_m)
    place = np.array([int(Path(r.path).name.split('@')[7][1:]) for r in recs])
    other_imgs, _ = _vg(root / 'town8' / 'test' / 'queries')
    other = _frames(enc, loc, other_imgs, [None] * len(other_imgs), threshold_m)
    degen = _frames(enc, loc, list(DEGENERATE.values()), [None] * len(DEGENERATE), threshold_m)
    fit_rows = np.concatenate([real[place % 2 == 0], other[0::2]])
    held = {'queries (odd places)': real[place % 2 == 1], 'another town (held out)': other[1::2]}
    cals = {'identity': Calibration(),
            'platt': fit_calibration(fit_rows[:, 0], fit_rows[:, 3] > 0, 'platt'),
            'platt_sim': fit_calibration(fit_rows[:, 0], fit_rows[:, 3] > 0, 'platt_sim',
                                         similarity=fit_rows[:, 1])}
    rep = {'model': model, 'places': places, 'threshold_m': threshold_m, 'min_confidence':
           min_conf, 'levels': dataclasses.asdict(loc.levels),
           'relative_similarity': {'real': np.percentile(real[:, 1], [5, 50, 95]).round(3)
                                   .tolist(), 'degenerate': degen[:, 1].round(3).tolist()},
           'calibrations': {k: c.to_dict() for k, c in cals.items()}, 'results': {}}
    for name, cal in cals.items():
        rep['results'][name] = {
            'held_out': _summary(cal, np.concatenate(list(held.values())), min_conf),
            'queries': _summary(cal, held['queries (odd places)'], min_conf),
            'another_town_false_priors': _false_priors(cal, held['another town (held out)'],
                                                       min_conf, False),
            'degenerate_false_priors_no_gate': _false_priors(cal, degen, min_conf, False),
            'degenerate_false_priors_with_gate': _false_priors(cal, degen, min_conf, True)}
    loc.close()
    (root / 'report.json').write_text(json.dumps(rep, indent=1))
    return rep


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', required=True)
    p.add_argument('--model', default='efficientnet_lite0_vpr')
    p.add_argument('--places', type=int, default=40)
    a = p.parse_args(argv)
    print(json.dumps(run(a.out, a.model, a.places)['results'], indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
