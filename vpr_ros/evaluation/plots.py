"""PNG plots of an evaluation: trajectory with right/wrong matches, PR curve, latencies."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import numpy as np


def _plt():
    import matplotlib
    matplotlib.use('Agg')  # headless; never opens a window
    import matplotlib.pyplot as plt
    return plt


def trajectory(path: Path, run, correct: Dict[int, bool], map_xy=None, title: str = '') -> None:
    """Ground-truth path; top-1 correct in green, wrong in red with a line to the wrong place,
    frames without an answer as grey crosses; map places as small dots."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 7))
    if map_xy is not None and len(map_xy):
        ax.scatter(map_xy[:, 0], map_xy[:, 1], s=4, c='#bbbbbb', label='map places')
    frames = [f for f in run.frames if f.gt is not None]
    if frames:
        gt = np.array([f.gt for f in frames])
        ax.plot(gt[:, 0], gt[:, 1], '-', c='#444444', lw=0.8, label='ground truth')
    ok = np.array([f.gt for f in frames if correct.get(f.index)]).reshape(-1, 2)
    bad = [f for f in frames if f.answered and not correct.get(f.index)]
    lost = np.array([f.gt for f in frames if not f.answered]).reshape(-1, 2)
    for f in bad:
        ax.plot([f.gt[0], f.cand_xy[0, 0]], [f.gt[1], f.cand_xy[0, 1]], '-', c='red', lw=0.6,
                alpha=0.6)
    ax.scatter(ok[:, 0], ok[:, 1], s=14, c='green', label=f'correct top-1 ({len(ok)})')
    bad_xy = np.array([f.gt for f in bad]).reshape(-1, 2)
    ax.scatter(bad_xy[:, 0], bad_xy[:, 1], s=14, c='red', label=f'wrong top-1 ({len(bad)})')
    if len(lost):
        ax.scatter(lost[:, 0], lost[:, 1], s=20, c='grey', marker='x',
                   label=f'no match ({len(lost)})')
    ax.set_aspect('equal', adjustable='datalim')
    ax.set_xlabel('x (m, map frame)')
    ax.set_ylabel('y (m)')
    ax.set_title(title or 'top-1 matches along the trajectory')
    ax.legend(loc='best', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def pr_curve(path: Path, precision, recall, operating: Optional[Dict] = None,
             ap: Optional[float] = None) -> None:
    """Precision-recall of "top-1 is correct" over the match confidence."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    if len(precision):
        ax.step(np.r_[0.0, recall], np.r_[precision[0], precision], where='pre',
                label='AP %.3f' % ap if ap is not None and np.isfinite(ap) else None)
    if operating and operating.get('precision') is not None:
        ax.plot([operating['recall']], [operating['precision']], 'o', c='red',
                label=f'min_confidence {operating["threshold"]}')
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel('recall (correct top-1 accepted)')
    ax.set_ylabel('precision')
    ax.set_title('match confidence')
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc='lower left', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def latency_hist(path: Path, frames, stages: Optional[List[str]] = None) -> None:
    """Histogram of per-frame latency per stage (ms)."""
    plt = _plt()
    stages = stages or list(dict.fromkeys(s for f in frames for s in f.latency_ms))
    fig, ax = plt.subplots(figsize=(6, 4))
    for s in stages:
        v = [f.latency_ms[s] for f in frames if s in f.latency_ms]
        if v:
            ax.hist(v, bins=30, alpha=0.5, label=s)
    ax.set_xlabel('ms')
    ax.set_ylabel('frames')
    ax.set_title('latency per stage')
    if stages:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_all(out: Path, run, correct: Dict[int, bool], rep: Dict, map_xy=None) -> Dict:
    """All three plots into ``out``; returns {plot: file name}."""
    out = Path(out)
    names = {'trajectory': 'trajectory.png', 'pr_curve': 'pr_curve.png',
             'latency': 'latency_hist.png'}
    r1 = rep['recall_at']['1']
    trajectory(out / names['trajectory'], run, correct, map_xy,
               f'{run.mode}: R@1 {r1:.3f} within {rep["threshold_m"]} m')
    c = rep['confidence']
    pr_curve(out / names['pr_curve'], np.array(c['curve']['precision']),
             np.array(c['curve']['recall']), c['at_min_confidence'], c['average_precision'])
    latency_hist(out / names['latency'], run.frames)
    return names
