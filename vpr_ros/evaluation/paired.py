"""Is one system's recall really above another's? Paired comparisons on the same queries.

Two systems evaluated on the same held-out queries differ only on the queries one gets right
and the other wrong. A few hundred queries rank systems to a point or two, so a report that
says "ours beats the student" needs the difference with its uncertainty: a paired bootstrap
confidence interval of the R@1 difference over queries and McNemar's exact test on the
discordant queries. Queries of one place are correlated (the same scene in several
conditions), so given each query's place the bootstrap resamples places; McNemar's test
counts queries and is somewhat optimistic for the same reason.
"""
from __future__ import annotations

import math
from typing import Dict, List, Mapping, Optional

import numpy as np


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: the chance of a split of the discordant queries at
    least this uneven if both systems were equally good (binomial, p = 1/2)."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2)
            for i in range(k + 1)]
    top = max(logs)
    tail = math.exp(top) * sum(math.exp(v - top) for v in logs)
    return min(1.0, 2.0 * tail)


def paired_difference(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, level: float = 0.95,
                      seed: int = 0, groups: Optional[np.ndarray] = None) -> Dict[str, float]:
    """R@1 of ``a`` minus R@1 of ``b`` in points, from per-query hits of the same queries.

    ``groups`` (one label per query, e.g. its place) makes the bootstrap resample whole groups,
    so correlated queries of one place count as one draw; without it queries are resampled.
    Returns ``diff``, the paired bootstrap interval ``ci_low`` / ``ci_high`` at ``level``,
    ``resampled`` ('places' or 'queries'), the discordant counts ``only_a`` / ``only_b``,
    McNemar's ``p`` (on queries either way) and ``queries``.
    """
    a, b = np.asarray(a, bool).ravel(), np.asarray(b, bool).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f'paired hits must be two equal, non-empty vectors: {a.shape} vs '
                         f'{b.shape}')
    d = a.astype(np.float64) - b.astype(np.float64)
    if groups is None:
        sums, counts = d, np.ones_like(d)
    else:
        groups = np.asarray(groups).ravel()
        if groups.shape != d.shape:
            raise ValueError(f'one group per query: {groups.shape} groups, {d.size} queries')
        _, inv = np.unique(groups, return_inverse=True)
        sums, counts = np.bincount(inv, d), np.bincount(inv).astype(np.float64)
    rng = np.random.default_rng(seed)
    boots: List[np.ndarray] = []
    chunk = max(1, 2_000_000 // sums.size)  # bound the (boots, groups) index array
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, sums.size, size=(min(chunk, n_boot - start), sums.size))
        boots.append(sums[idx].sum(axis=1) / counts[idx].sum(axis=1))
    lo, hi = np.quantile(np.concatenate(boots), [(1 - level) / 2, (1 + level) / 2])
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    return {'diff': float(100 * d.mean()), 'ci_low': float(100 * lo),
            'ci_high': float(100 * hi), 'level': level,
            'resampled': 'queries' if groups is None else 'places', 'groups': int(sums.size),
            'only_a': only_a, 'only_b': only_b, 'p': mcnemar_p(only_a, only_b),
            'queries': int(d.size)}


def paired_against(hits: Mapping[str, np.ndarray], ref: str, n_boot: int = 2000,
                   seed: int = 0, groups: Optional[np.ndarray] = None
                   ) -> Dict[str, Dict[str, float]]:
    """{other system: paired_difference(ref, other)} for every other system in ``hits``
    (per-query R@1 hits of the same queries); empty when ``ref`` is not among them."""
    if ref not in hits:
        return {}
    return {k: paired_difference(hits[ref], h, n_boot, seed=seed, groups=groups)
            for k, h in hits.items() if k != ref}


def nearest_place(q_xy: np.ndarray, db_xy: np.ndarray) -> np.ndarray:
    """The index of each query's nearest database position: its place, for ``groups``."""
    q_xy, db_xy = np.asarray(q_xy, np.float64), np.asarray(db_xy, np.float64)
    step = max(1, 1_000_000 // max(1, len(db_xy)))  # bound the (queries, db) distance block
    return np.concatenate([
        np.argmin(((q_xy[i:i + step, None, :] - db_xy[None]) ** 2).sum(axis=2), axis=1)
        for i in range(0, len(q_xy), step)]) if len(q_xy) else np.zeros(0, np.int64)


def clearly_above(pair: Dict[str, float], margin: float = 2.0) -> bool:
    """At least ``margin`` points above, and the interval excludes no difference."""
    return pair['diff'] >= margin and pair['ci_low'] > 0.0


def describe(pair: Dict[str, float]) -> str:
    """'+1.9 points (95% CI -0.4 to +4.2, p 0.11; 21 vs 12 queries only one got right)'."""
    return (f'{pair["diff"]:+.1f} points ({100 * pair["level"]:.0f}% CI '
            f'{pair["ci_low"]:+.1f} to {pair["ci_high"]:+.1f}, p {pair["p"]:.2g}; '
            f'{pair["only_a"]} vs {pair["only_b"]} queries only one got right)')
