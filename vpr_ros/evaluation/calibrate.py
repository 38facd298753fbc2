"""``vpr-ros evaluate --fit-calibration``: fit the matcher's confidence calibration on the frames.

Each evaluated frame gives one row: the raw (uncalibrated) confidence of the matcher's estimate,
the frame's top-1 similarity relative to the map's levels (what the Localizer passes to the
tracker for a 'platt_sim' calibration) and whether its pose prior lies within the evaluation's
``threshold_m`` of the ground truth (the report's pose-prior error, not R@1's top-1 place).
Frames below the map's similarity floor are left out: the matcher publishes them with
confidence 0 whatever the calibration says. The fit is in-sample (fitted and measured on the
same frames); the report says so.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

MIN_FRAMES = 20  # fewer rows than this give a calibration that is mostly the ridge prior


class CalibrationFitError(ValueError):
    """The frames cannot give a calibration (too few, or no correct or no wrong one)."""


def frame_similarity(localizer, match) -> Tuple[float, float, bool]:
    """(top-1 cosine, relative similarity, above the similarity floor) of a frame's ``match``
    as ``Localizer.estimate`` computes them (hubness- and verification-aware)."""
    from vpr_ros.localization.similarity import relative_similarity
    best = float(localizer._plain_similarity(match))
    return (best, relative_similarity(best, localizer.levels),
            best >= localizer.similarity_floor)


def prior_correct(prior, gt, threshold_m: float) -> bool:
    """Whether a pose prior (x, y, ...) lies within ``threshold_m`` of the ground truth."""
    return (prior is not None and gt is not None
            and math.hypot(prior[0] - gt[0], prior[1] - gt[1]) <= threshold_m)


def calibrated_frames(frames: Sequence) -> List:
    """The FrameResults whose confidence went through the calibration: answered, with ground
    truth and a prior, and recognised (above the map's similarity floor)."""
    return [f for f in frames
            if f.answered and f.gt is not None and f.prior is not None and f.recognised]


def calibration_rows(frames: Sequence, threshold_m: float):
    """(raw confidence, relative similarity, correct) arrays of ``calibrated_frames``; frames
    without a raw confidence (live runs) are left out."""
    rows = [(f.raw_confidence, f.similarity, prior_correct(f.prior, f.gt, threshold_m))
            for f in calibrated_frames(frames) if math.isfinite(f.raw_confidence)]
    a = np.array(rows, np.float64).reshape(-1, 3)
    return a[:, 0], a[:, 1], a[:, 2] > 0


def published_ece(frames: Sequence, threshold_m: float) -> Dict:
    """ECE of the published (calibrated) confidence of ``calibrated_frames`` against the same
    correctness as the fit; {'ece': None} without frames."""
    from vpr_ros.localization.calibration import expected_calibration_error
    sel = calibrated_frames(frames)
    conf = [f.confidence for f in sel]
    ok = [prior_correct(f.prior, f.gt, threshold_m) for f in sel]
    return {'ece': expected_calibration_error(conf, ok) if sel else None, 'frames': len(sel),
            'correct': 'pose prior within threshold_m of the ground truth'}


@dataclasses.dataclass
class CalibrationFit:
    """A calibration fitted on an evaluation, with its in-sample ECE before/after."""

    calibration: object          # localization.calibration.Calibration
    ece_before: float
    ece_after: float
    frames: int
    correct: int
    path: str = ''
    ignored_calibration_file: str = ''

    def section(self) -> Dict:
        """The report.json ``calibration_fit`` section."""
        return {'path': self.path, 'method': self.calibration.method,
                'calibration': self.calibration.to_dict(), 'frames': self.frames,
                'correct': self.correct, 'ece_before': self.ece_before,
                'ece_after': self.ece_after, 'in_sample': True,
                'ignored_calibration_file': self.ignored_calibration_file,
                'warning': in_sample_warning(self.path)}


def fit_summary(section: Dict) -> List[str]:
    """What the CLI prints and report.md lists about a ``calibration_fit`` section."""
    out = [f'calibration ({section["method"]}) fitted on {section["frames"]} frames '
           f'({section["correct"]} correct): ECE before {section["ece_before"]:.6f}, after '
           f'{section["ece_after"]:.6f}; written to {section["path"]}']
    if section.get('ignored_calibration_file'):
        out.append(f'the params file\'s calibration_file '
                   f'{section["ignored_calibration_file"]} was not applied: the fit needs raw '
                   f'confidences')
    return out + [section['warning']]


def in_sample_warning(path: str) -> str:
    return ('warning: in-sample ECE (fitted and measured on the same frames); check it on '
            f'another bag or folder by evaluating again with calibration_file: {path} in the '
            "matcher's section of --params-file")


def fit_rows(raw, similarity, correct, method: str = 'platt_sim') -> CalibrationFit:
    """Fit ``method`` on rows; CalibrationFitError when they cannot support a fit."""
    from vpr_ros.localization.calibration import (calibration_ece, expected_calibration_error,
                                                  fit_calibration)
    raw, correct = np.asarray(raw, np.float64), np.asarray(correct, bool)
    n, k = int(raw.size), int(correct.sum())
    if n < MIN_FRAMES:
        raise CalibrationFitError(f'cannot fit a calibration on {n} frames (at least '
                                  f'{MIN_FRAMES} recognised frames with ground truth needed)')
    if k in (0, n):
        raise CalibrationFitError(f'cannot fit a calibration: all {n} frames are '
                                  f'{"correct" if k else "wrong"}; evaluate on frames with '
                                  f'both outcomes (or change --threshold-m)')
    cal = fit_calibration(raw, correct, method, similarity=similarity)
    return CalibrationFit(cal, expected_calibration_error(raw, correct),
                          calibration_ece(cal, raw, correct, similarity), n, k)


def fit_frames(frames: Sequence, threshold_m: float, method: str = 'platt_sim',
               path: Optional[str] = None) -> CalibrationFit:
    """Fit a calibration on an evaluation's FrameResults (``calibration_rows``)."""
    raw, sim, correct = calibration_rows(frames, threshold_m)
    fit = fit_rows(raw, sim, correct, method)
    fit.path = str(Path(path).resolve()) if path else ''
    return fit


def save(fit: CalibrationFit, path) -> Path:
    """Write the calibration atomically (Calibration.save), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return fit.calibration.save(path)
