"""Confidence calibration: among frames reported with confidence c, a fraction c is correct.

``fit_calibration`` learns a monotone map from raw confidences and correctness labels, either
Platt scaling (a logistic on logit(conf), two parameters, smooth) or isotonic regression
(pool-adjacent-violators, a step function, needs more data). ``platt_sim`` adds the frame's
absolute similarity as a soft factor: a logistic on (logit(conf), relative similarity), the
latter the top-1 cosine placed between the map's own levels (localization.similarity:
0 = two unrelated map entries, 1 = an entry and its nearest neighbour), so a frame that ranks
one place first but matches it barely better than anything (a black frame, noise, another
town) gets a low confidence even when its ranking margin is large. Stored as JSON.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Dict, List

import numpy as np

EPS = 1e-6
METHODS = ('identity', 'platt', 'isotonic', 'platt_sim')
NEUTRAL_SIMILARITY = 1.0   # relative similarity assumed when unknown: a typical real match


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))  # no overflow


def _logit(p):
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(p / (1.0 - p))


@dataclasses.dataclass
class Calibration:
    """A monotone map raw confidence -> calibrated probability."""

    method: str = 'identity'
    a: float = 1.0                 # platt: sigmoid(a * logit(c) + b)
    b: float = 0.0
    s: float = 0.0                 # platt_sim: sigmoid(a * logit(c) + s * similarity + b)
    x: List[float] = dataclasses.field(default_factory=list)   # isotonic knots
    y: List[float] = dataclasses.field(default_factory=list)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f'unknown calibration method {self.method!r}; known: {METHODS}')
        if self.method == 'isotonic' and (len(self.x) < 1 or len(self.x) != len(self.y)):
            raise ValueError('isotonic calibration needs matching, non-empty x and y knots')

    def apply(self, conf, similarity=None):
        """Calibrated confidence(s), same shape as ``conf`` (a float for a scalar).

        ``similarity``: the frame's relative similarity (similarity.relative_similarity), used
        by 'platt_sim' only; unknown (None/NaN) counts as a typical real match."""
        c = np.clip(np.asarray(conf, dtype=np.float64), 0.0, 1.0)
        if self.method == 'platt':
            out = _sigmoid(self.a * _logit(c) + self.b)
        elif self.method == 'platt_sim':
            out = _sigmoid(self.a * _logit(c) + self.s * _similarity(similarity, c.shape)
                           + self.b)
        elif self.method == 'isotonic':
            out = np.interp(c, self.x, self.y)
        else:
            out = c
        return float(out) if out.ndim == 0 else out

    def to_dict(self) -> Dict:
        return dataclasses.asdict(self)

    def save(self, path) -> Path:
        """Write as JSON (atomically: a reader never sees half a file)."""
        path = Path(path)
        tmp = path.with_name(path.name + '.tmp')
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + '\n')
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path) -> 'Calibration':
        """Read a JSON written by ``save``; an empty path gives the identity."""
        if not str(path):
            return cls()
        d = json.loads(Path(path).read_text())
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f'{path}: unknown calibration keys {unknown}')
        return cls(**d)


def _similarity(similarity, shape) -> np.ndarray:
    if similarity is None:
        return np.full(shape, NEUTRAL_SIMILARITY)
    r = np.asarray(similarity, dtype=np.float64)
    return np.clip(np.where(np.isfinite(r), r, NEUTRAL_SIMILARITY), -3.0, 3.0)


def fit_calibration(confidences, correct, method: str = 'platt',
                    l2: float = 1e-3, similarity=None) -> Calibration:
    """Fit a calibration on raw ``confidences`` (N,) and boolean ``correct`` (N,) labels;
    'platt_sim' also needs each frame's relative ``similarity`` (N,).

    ``l2`` is a small ridge on the Platt parameters so that separable data stays finite.
    """
    c = np.asarray(confidences, dtype=np.float64).ravel()
    t = np.asarray(correct, dtype=np.float64).ravel()
    if c.size == 0 or c.size != t.size:
        raise ValueError('fit_calibration needs as many labels as confidences (N >= 1)')
    if method == 'identity':
        return Calibration()
    if method == 'isotonic':
        x, y = _isotonic(c, t)
        return Calibration('isotonic', x=x.tolist(), y=y.tolist())
    if method not in ('platt', 'platt_sim'):
        raise ValueError(f'unknown calibration method {method!r}; known: {METHODS}')
    cols = [_logit(c)]
    if method == 'platt_sim':
        if similarity is None or np.size(similarity) != c.size:
            raise ValueError('platt_sim needs one relative similarity per confidence')
        cols.append(_similarity(np.ravel(similarity), c.shape))
    X = np.stack(cols + [np.ones_like(c)], axis=1)

    def loss(th):
        z = X @ th
        return float(np.sum(np.logaddexp(0.0, z) - t * z) + 0.5 * l2 * th @ th)

    theta = np.zeros(X.shape[1])
    theta[0] = 1.0
    for _ in range(100):  # damped Newton on the penalised log loss (convex)
        p = _sigmoid(X @ theta)
        grad = X.T @ (p - t) + l2 * theta
        hess = (X * (p * (1 - p))[:, None]).T @ X + l2 * np.eye(X.shape[1])
        step = np.linalg.solve(hess, grad)
        f0, scale = loss(theta), 1.0
        while loss(theta - scale * step) > f0 and scale > 1e-8:
            scale *= 0.5
        theta = theta - scale * step
        if np.abs(scale * step).max() < 1e-10:
            break
    if method == 'platt_sim':
        return Calibration('platt_sim', a=float(theta[0]), s=float(theta[1]),
                           b=float(theta[2]))
    return Calibration('platt', a=float(theta[0]), b=float(theta[1]))


def _isotonic(c: np.ndarray, t: np.ndarray):
    """Pool-adjacent-violators: non-decreasing fit of t on c; returns (knots x, values y)."""
    order = np.argsort(c, kind='stable')
    blocks = []  # [sum of t, count, min c, max c]
    for ci, ti in zip(c[order], t[order]):
        blocks.append([ti, 1.0, ci, ci])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            s, n, _, hi = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += n
            blocks[-1][3] = hi
    x, y = [], []
    for s, n, lo, hi in blocks:
        x += [lo, hi] if hi > lo else [lo]
        y += [s / n] * (2 if hi > lo else 1)
    return np.array(x), np.array(y)


def reliability_bins(confidences, correct, n_bins: int = 10) -> List[Dict]:
    """Equal-width confidence bins: lo, hi, count, mean confidence and accuracy of each."""
    c = np.clip(np.asarray(confidences, dtype=np.float64).ravel(), 0.0, 1.0)
    t = np.asarray(correct, dtype=np.float64).ravel()
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.minimum(np.searchsorted(edges, c, side='right') - 1, n_bins - 1)
    out = []
    for b in range(n_bins):
        sel = which == b
        n = int(sel.sum())
        out.append({'lo': float(edges[b]), 'hi': float(edges[b + 1]), 'count': n,
                    'confidence': float(c[sel].mean()) if n else None,
                    'accuracy': float(t[sel].mean()) if n else None})
    return out


def expected_calibration_error(confidences, correct, n_bins: int = 10) -> float:
    """Count-weighted mean |accuracy - confidence| over equal-width bins."""
    bins = reliability_bins(confidences, correct, n_bins)
    total = sum(b['count'] for b in bins)
    if total == 0:
        return 0.0
    return float(sum(b['count'] * abs(b['accuracy'] - b['confidence'])
                     for b in bins if b['count']) / total)


def calibration_ece(cal: Calibration, confidences, correct, similarity=None,
                    n_bins: int = 10) -> float:
    """ECE of ``cal`` applied to raw ``confidences`` (with each frame's relative
    ``similarity`` for 'platt_sim') against the ``correct`` labels."""
    conf = np.asarray(cal.apply(confidences, similarity), np.float64).reshape(-1)
    return expected_calibration_error(conf, correct, n_bins)


def write_reliability_png(path, curves: Dict[str, tuple], n_bins: int = 10,
                          title: str = 'Reliability') -> Path:
    """Reliability diagram: ``curves`` = {label: (confidences, correct)}; ECE in the legend."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], 'k:', lw=1, label='perfect')
    for label, (conf, corr) in curves.items():
        bins = [b for b in reliability_bins(conf, corr, n_bins) if b['count']]
        ece = expected_calibration_error(conf, corr, n_bins)
        ax.plot([b['confidence'] for b in bins], [b['accuracy'] for b in bins], 'o-',
                label=f'{label} (ECE {ece:.3f})')
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel='reported confidence', ylabel='fraction correct',
           title=title)
    ax.legend(loc='upper left', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
