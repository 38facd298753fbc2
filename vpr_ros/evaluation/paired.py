"""Is one system's recall really above another's? Paired comparisons on the same queries.

Two systems evaluated on the same held-out queries differ only on the queries one gets right
and the other wrong. A few hundred queries rank systems to a point or two, so a report that
says "ours beats the student" needs the difference with its uncertainty: a paired bootstrap
confidence interval of the R@1 difference over queries and McNemar's exact test on the
discordant queries. Queries of one place are correlated (the same scene in several
conditions), so both are slightly optimistic; the interval still tells noise from an effect.
"""
from __future__ import annotations

import math
from typing import Dict, List, Mapping

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
                      seed: int = 0) -> Dict[str, float]:
    """R@1 of ``a`` minus R@1 of ``b`` in points, from per-query hits of the same queries.

    Returns ``diff``, the paired bootstrap interval ``ci_low`` / ``ci_high`` at ``level``,
    the discordant counts ``only_a`` / ``only_b``, McNemar's ``p`` and ``queries``.
    """
    a, b = np.asarray(a, bool).ravel(), np.asarray(b, bool).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f'paired hits must be two equal, non-empty vectors: {a.shape} vs '
                         f'{b.shape}')
    d = a.astype(np.float64) - b.astype(np.float64)
    rng = np.random.default_rng(seed)
    boots: List[np.ndarray] = []
    chunk = max(1, 2_000_000 // d.size)  # bound the (boots, queries) index array
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, d.size, size=(min(chunk, n_boot - start), d.size))
        boots.append(d[idx].mean(axis=1))
    lo, hi = np.quantile(np.concatenate(boots), [(1 - level) / 2, (1 + level) / 2])
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    return {'diff': float(100 * d.mean()), 'ci_low': float(100 * lo),
            'ci_high': float(100 * hi), 'level': level, 'only_a': only_a, 'only_b': only_b,
            'p': mcnemar_p(only_a, only_b), 'queries': int(d.size)}


def paired_against(hits: Mapping[str, np.ndarray], ref: str, n_boot: int = 2000,
                   seed: int = 0) -> Dict[str, Dict[str, float]]:
    """{other system: paired_difference(ref, other)} for every other system in ``hits``
    (per-query R@1 hits of the same queries); empty when ``ref`` is not among them."""
    if ref not in hits:
        return {}
    return {k: paired_difference(hits[ref], h, n_boot, seed=seed)
            for k, h in hits.items() if k != ref}


def clearly_above(pair: Dict[str, float], margin: float = 2.0) -> bool:
    """At least ``margin`` points above, and the interval excludes no difference."""
    return pair['diff'] >= margin and pair['ci_low'] > 0.0


def describe(pair: Dict[str, float]) -> str:
    """'+1.9 points (95% CI -0.4 to +4.2, p 0.11; 21 vs 12 queries only one got right)'."""
    return (f'{pair["diff"]:+.1f} points ({100 * pair["level"]:.0f}% CI '
            f'{pair["ci_low"]:+.1f} to {pair["ci_high"]:+.1f}, p {pair["p"]:.2g}; '
            f'{pair["only_a"]} vs {pair["only_b"]} queries only one got right)')
