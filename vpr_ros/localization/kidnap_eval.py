"""Kidnapped-robot evaluation: single-frame retrieval vs the place filter (no ROS).

A sequence of frames with ground truth and top-k retrieval results is replayed through both
methods. A method "publishes a prior" on a frame when it says it is localized (single frame:
confidence >= the matcher's ``min_confidence``; filter: its hysteresis state). A prior is
correct within ``correct_m`` (25 m, the VPR protocol). Reported per method: frames and seconds
from the jump to the first correct published prior, the rate of wrong priors among published
ones, the fraction of frames with a prior, and position error percentiles.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Optional, Sequence

import numpy as np

from vpr_ros.config import MatcherConfig
from vpr_ros.localization.calibration import expected_calibration_error, fit_calibration
from vpr_ros.localization.place_filter import FilterConfig
from vpr_ros.localization.tracking import LocalizationTracker

CORRECT_M = 25.0


@dataclasses.dataclass
class EvalFrame:
    """One frame: ground truth and the retrieval of its query (candidates best first)."""

    stamp: float                  # seconds
    gt_xy: Sequence[float]        # ground-truth map-frame position
    scores: np.ndarray            # (k,) cosine scores
    positions: np.ndarray         # (k, 3) candidate positions
    yaws: np.ndarray              # (k,) candidate yaws
    odom: Optional[Sequence[float]] = None   # (dx, dy, dyaw) robot frame since the last frame


def find_jump(frames: Sequence[EvalFrame], factor: float = 5.0) -> Optional[int]:
    """Index of the first frame after the largest ground-truth step, if that step is more than
    ``factor`` times the median step (the kidnap); None otherwise."""
    gt = np.array([f.gt_xy for f in frames], dtype=np.float64)
    if len(gt) < 3:
        return None
    steps = np.linalg.norm(np.diff(gt, axis=0), axis=1)
    i = int(np.argmax(steps))
    return i + 1 if steps[i] > factor * max(np.median(steps), 1e-6) else None


def run_single(frames: Sequence[EvalFrame], mcfg: MatcherConfig) -> Dict[str, np.ndarray]:
    """Per-frame estimate, confidence and published flag of the matcher's single-frame path."""
    return _run(frames, dataclasses.replace(mcfg, use_filter=False), False, 0)


def run_filter(frames: Sequence[EvalFrame], mcfg: MatcherConfig, use_odom: bool = True,
               num_places: int = 0) -> Dict[str, np.ndarray]:
    """Per-frame estimate, confidence, published (localized) and relocalized flags of the
    matcher's temporal filter (``mcfg.filter``), fed the frames' odometry or none."""
    return _run(frames, dataclasses.replace(mcfg, use_filter=True), use_odom, num_places)


def _run(frames, mcfg: MatcherConfig, use_odom: bool, num_places: int) -> Dict[str, np.ndarray]:
    """The matcher's own tracker (calibration included) over the frames, in order."""
    tracker = LocalizationTracker(mcfg)
    est, conf, raw, pub, reloc = [], [], [], [], []
    for f in frames:
        e = tracker.step(f.stamp, f.scores, f.positions, f.yaws, None, num_places,
                         motion=f.odom if use_odom else None)
        est.append((e.x, e.y))
        conf.append(e.confidence)
        raw.append(e.raw_confidence)
        pub.append(e.localized)
        reloc.append(e.relocalized)
    return {'xy': np.array(est), 'confidence': np.array(conf),
            'raw_confidence': np.array(raw), 'published': np.array(pub),
            'relocalized': np.array(reloc)}


def summarize(run: Dict[str, np.ndarray], frames: Sequence[EvalFrame], jump: Optional[int],
              correct_m: float = CORRECT_M) -> Dict:
    """Metrics of one method's per-frame run (see the module docstring)."""
    gt = np.array([f.gt_xy for f in frames], dtype=np.float64)
    stamps = np.array([f.stamp for f in frames], dtype=np.float64)
    err = np.linalg.norm(run['xy'] - gt, axis=1)
    pub = run['published']
    good = pub & (err <= correct_m)
    out = {'frames': len(frames),
           'published_fraction': float(pub.mean()),
           'wrong_prior_rate': float((pub & ~good).sum() / max(pub.sum(), 1)),
           'wrong_priors': int((pub & ~good).sum()),
           'first_correct_frame': _first(good, 0),
           'relocalization_events': int(run['relocalized'].sum())}
    pe = err[pub]
    for q in (50, 90, 95):
        out[f'published_error_p{q}_m'] = float(np.percentile(pe, q)) if pe.size else None
    out['published_error_max_m'] = float(pe.max()) if pe.size else None
    if jump is not None:
        k = _first(good, jump)
        out['relocalize_frames'] = None if k is None else k - jump
        out['relocalize_s'] = None if k is None else float(stamps[k] - stamps[jump])
        out['relocalization_events_after_jump'] = int(run['relocalized'][jump:].sum())
    correct = err <= correct_m
    out['ece_raw'] = expected_calibration_error(run['confidence'], correct)
    out['ece_platt_crossfit'] = _crossfit_ece(run['raw_confidence'], correct)
    return out


def _first(mask: np.ndarray, start: int) -> Optional[int]:
    idx = np.flatnonzero(mask[start:])
    return int(idx[0] + start) if idx.size else None


def _crossfit_ece(conf: np.ndarray, correct: np.ndarray, block: int = 20) -> Optional[float]:
    """ECE of Platt calibration fit on alternate blocks of frames and applied to the others
    (consecutive frames are correlated, so blocks rather than single frames)."""
    fold = (np.arange(conf.size) // block) % 2
    out = np.empty(conf.size)
    for k in (0, 1):
        train = fold != k
        if train.sum() == 0 or (fold == k).sum() == 0:
            return None
        out[fold == k] = fit_calibration(conf[train], correct[train]).apply(conf[fold == k])
    return expected_calibration_error(out, correct)


def evaluate_sequence(frames: Sequence[EvalFrame], cfg: Optional[FilterConfig] = None,
                      matcher: Optional[MatcherConfig] = None, jump: Optional[int] = None,
                      num_places: int = 0, correct_m: float = CORRECT_M,
                      with_runs: bool = False) -> Dict:
    """Compare single-frame retrieval and the filter (with and, if the frames carry odometry,
    without it) on ``frames`` retrieved from a map of ``num_places`` places (0: unknown).
    ``jump`` defaults to ``find_jump(frames)``."""
    mcfg = matcher or MatcherConfig()
    if cfg is not None:
        mcfg = dataclasses.replace(mcfg, filter=cfg)
    cfg = mcfg.filter
    jump = find_jump(frames) if jump is None else jump
    runs = {'single_frame': run_single(frames, mcfg)}
    if any(f.odom is not None for f in frames):
        runs['filter_odom'] = run_filter(frames, mcfg, True, num_places)
    runs['filter_no_odom'] = run_filter(frames, mcfg, False, num_places)
    res = {'jump_index': jump, 'correct_m': correct_m, 'num_places': num_places,
           'jump_stamp_s': None if jump is None else float(frames[jump].stamp - frames[0].stamp),
           'single_frame_min_confidence': mcfg.min_confidence,
           'filter_config': dataclasses.asdict(cfg),
           'methods': {name: summarize(r, frames, jump, correct_m) for name, r in runs.items()}}
    if with_runs:
        gt = np.array([f.gt_xy for f in frames], dtype=np.float64)
        for r in runs.values():
            r['error'] = np.linalg.norm(r['xy'] - gt, axis=1)
        res['runs'] = runs
    return res


def markdown_table(res: Dict) -> str:
    """The metrics of ``evaluate_sequence`` as a markdown table (one column per method)."""
    names = list(res['methods'])
    rows = [('relocalize_frames', 'frames from jump to first correct prior'),
            ('relocalize_s', 'seconds from jump to first correct prior'),
            ('wrong_prior_rate', 'wrong priors / published priors'),
            ('wrong_priors', 'wrong priors (count)'),
            ('published_fraction', 'frames with a published prior'),
            ('published_error_p50_m', 'published error p50 (m)'),
            ('published_error_p90_m', 'published error p90 (m)'),
            ('published_error_p95_m', 'published error p95 (m)'),
            ('published_error_max_m', 'published error max (m)'),
            ('relocalization_events_after_jump', 'relocalized events after the jump'),
            ('ece_raw', 'ECE of the reported confidence'),
            ('ece_platt_crossfit', 'ECE after Platt calibration (2-fold)')]
    lines = ['| metric | ' + ' | '.join(names) + ' |', '|---' * (len(names) + 1) + '|']
    for key, label in rows:
        vals = [res['methods'][n].get(key) for n in names]
        lines.append(f'| {label} | ' + ' | '.join(_fmt(v) for v in vals) + ' |')
    return '\n'.join(lines) + '\n'


def _fmt(v) -> str:
    if v is None:
        return 'n/a'
    if isinstance(v, float):
        return f'{v:.3f}' if abs(v) < 10 or math.isclose(v, round(v, 3)) else f'{v:.1f}'
    return str(v)


def plot_errors(res: Dict, stamps: List[float], path) -> None:
    """Error over time per method (dots where a prior is published), the jump marked."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    t = np.asarray(stamps) - stamps[0]
    fig, ax = plt.subplots(figsize=(9, 4))
    for name, r in res['runs'].items():
        line, = ax.plot(t, np.maximum(r['error'], 0.1), lw=0.8, alpha=0.6, label=name)
        p = r['published']
        ax.plot(t[p], np.maximum(r['error'][p], 0.1), '.', ms=3, color=line.get_color())
    ax.axhline(res['correct_m'], color='k', ls=':', lw=1, label=f'{res["correct_m"]:.0f} m')
    if res['jump_index'] is not None:
        ax.axvline(t[res['jump_index']], color='r', ls='--', lw=1, label='kidnap')
    ax.set(yscale='log', xlabel='time (s)', ylabel='position error (m)',
           title='Estimate error (dots: prior published)')
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
