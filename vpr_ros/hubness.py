"""Map-side hubness correction (CSLS) for searching a map with another network's queries.

A compatible query network reproduces the map model's descriptors only roughly (held-out
cosine to the gallery's descriptor of the same image 0.1-0.3 for a 72x96 network against a
336x448 map model), so some map entries sit close to many query descriptors whatever the
query shows ("hubs") and win searches they should not. Cross-domain similarity local scaling
(CSLS, Conneau et al., ICLR 2018) scores a query q against map entry g as::

    2 q.g - r_Q(g) - r_G(q)

where r_Q(g) is the mean similarity of g to its k nearest *query-side* descriptors of a
reference set (images of other places, e.g. the query network's training images) and r_G(q)
the same for q among the map. r_G(q) is one constant per query and never changes its ranking,
so the ranking is that of ``q.g - bias(g)`` with ``bias(g) = r_Q(g) / 2``: one number per map
entry, computed offline once per (map, query network) and independent of the other entries,
so adding places to a map only adds their own biases.

``with_bias`` folds the bias into the vectors (``[q, 1] . [g, -bias] = q.g - bias``), so any
inner-product index (faiss IndexFlatIP, the map store's search) applies it exactly.
Pure numpy; no ROS.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

DEFAULT_K = 10


def hub_bias(map_desc: np.ndarray, reference: np.ndarray, k: int = DEFAULT_K) -> np.ndarray:
    """(M,) float32 ``bias(g) = mean of the k largest g.r over reference descriptors r / 2``.

    ``map_desc`` (M, D) are the map's descriptors, ``reference`` (R, D) the query network's
    descriptors of reference images whose places are not in the map (their own true matches
    would make every entry of their places look like a hub).
    """
    m = np.ascontiguousarray(map_desc, dtype=np.float32)
    r = np.ascontiguousarray(reference, dtype=np.float32)
    if m.ndim != 2 or r.ndim != 2 or m.shape[1] != r.shape[1]:
        raise ValueError(f'hub_bias needs (M, D) map and (R, D) reference descriptors, got '
                         f'{m.shape} and {r.shape}')
    _check_k(k, len(r))
    out = np.empty(len(m), dtype=np.float32)
    step = max(1, (1 << 22) // len(r))   # (step, R) similarity blocks of ~16 MB
    for i in range(0, len(m), step):     # matmul + partition: 4x faster than a faiss search
        sims = m[i:i + step] @ r.T
        out[i:i + step] = np.partition(sims, len(r) - k, axis=1)[:, len(r) - k:].mean(axis=1)
    return out / 2.0


def biased_map(map_desc: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """(M, D+1) map descriptors ``[g, -bias(g)]``: against ``[q, 1]`` they score
    ``q.g - bias(g)``."""
    g = np.asarray(map_desc, dtype=np.float32)
    b = np.asarray(bias, dtype=np.float32).reshape(-1)
    if len(b) != len(g):
        raise ValueError(f'{len(b)} biases for {len(g)} map descriptors')
    return np.concatenate([g, -b[:, None]], axis=1)


def with_bias(query: np.ndarray, map_desc: np.ndarray, bias: np.ndarray
              ) -> Tuple[np.ndarray, np.ndarray]:
    """(queries (Q, D+1), map (M, D+1)) whose inner products are ``q.g - bias(g)``."""
    q = np.asarray(query, dtype=np.float32)
    return (np.concatenate([q, np.ones((len(q), 1), np.float32)], axis=1),
            biased_map(map_desc, bias))


def corrected_scores(query: np.ndarray, map_desc: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """(Q, M) scores ``q.g - bias(g)`` (the ranking CSLS gives)."""
    q, g = with_bias(query, map_desc, bias)
    return q @ g.T


def _check_k(k: int, num_reference: int) -> None:
    if not 1 <= k <= num_reference:
        raise ValueError(f'hubness k must be between 1 and the {num_reference} reference '
                         f'descriptors, got {k}')


def _check_reference(desc: np.ndarray, where: str = '') -> None:
    if desc.ndim != 2 or not len(desc) or not np.all(np.isfinite(desc)):
        raise ValueError(f'{where}reference descriptors must be a finite (R, D) array, got '
                         f'{desc.shape}')


def save_reference(path, descriptors: np.ndarray, encoder: str, compatible_with: str,
                   k: int = DEFAULT_K) -> dict:
    """Write a query network's reference descriptors for the matcher (``.npz``, no pickle):
    ``encoder`` the query network, ``compatible_with`` the map model whose maps it searches.
    Returns the metadata written."""
    import json
    from pathlib import Path
    d = np.asarray(descriptors, dtype=np.float32)
    _check_reference(d)
    meta = {'encoder': encoder, 'compatible_with': compatible_with, 'k': int(k),
            'num': int(len(d)), 'dim': int(d.shape[1])}
    path = Path(path)
    tmp = path.with_name(path.name + '.tmp.npz')
    np.savez(tmp, descriptors=d.astype(np.float16), meta=np.array(json.dumps(meta)))
    tmp.replace(path)
    return meta


def load_reference(path) -> Tuple[np.ndarray, dict]:
    """(float32 (R, D) descriptors, metadata) of ``save_reference``; a clear ValueError for a
    file that is not one."""
    import json
    try:
        with np.load(path, allow_pickle=False) as z:
            desc = np.asarray(z['descriptors'], dtype=np.float32)
            meta = json.loads(str(z['meta']))
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f'{path}: not a vpr_ros hubness reference ({exc})') from None
    _check_reference(desc, f'{path}: ')
    return desc, meta


class HubnessCorrector:
    """Re-scores a map search: ``q.g - bias(g)`` for the top ``candidates`` of the plain
    search, the biases of map entries computed on first sight and kept in one float per map
    id (4 MB for a million places; ``reset`` when the map changes). Used by the matcher node
    and the offline evaluation; no ROS."""

    def __init__(self, reference: np.ndarray, k: int = DEFAULT_K, candidates: int = 50,
                 meta: Optional[dict] = None, source: str = ''):
        self.meta, self.source = dict(meta or {}), source
        self.reference = np.ascontiguousarray(reference, dtype=np.float32)
        _check_k(k, len(self.reference))
        if candidates < 1:
            raise ValueError(f'hubness candidates must be >= 1, got {candidates}')
        self.k, self.candidates = int(k), int(candidates)
        self._bias = np.full(0, np.nan, np.float32)   # by map id; NaN = not computed yet

    @property
    def dim(self) -> int:
        return int(self.reference.shape[1])

    @classmethod
    def from_file(cls, path, k: int = DEFAULT_K, candidates: int = 50) -> 'HubnessCorrector':
        """The corrector of a ``save_reference`` file."""
        ref, meta = load_reference(path)
        return cls(ref, k, candidates, meta, str(path))

    def check_map(self, dim: int, encoder: str) -> None:
        """ValueError unless the reference was made for maps of ``encoder`` of width ``dim``."""
        want = self.meta.get('compatible_with')
        if self.dim != dim or (want and want != encoder):
            raise ValueError(f'hubness reference {self.source!r} is for {self.dim}-d maps of '
                             f'{want!r}; this map is {dim}-d from {encoder!r}')

    def reset(self) -> None:
        self._bias = np.full(0, np.nan, np.float32)

    def rescore(self, scores: np.ndarray, ids: np.ndarray, descriptors_of, top_k: int
                ) -> Tuple[np.ndarray, np.ndarray]:
        """(corrected scores, ids) of the best ``top_k`` among one query's candidates
        (``ids`` >= 0 only); ``descriptors_of(ids)`` returns the map's descriptors."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size and ids.max() >= len(self._bias):   # a float per map entry, grown on use
            grown = np.full(max(int(ids.max()) + 1, 2 * len(self._bias)), np.nan, np.float32)
            grown[:len(self._bias)] = self._bias
            self._bias = grown
        new = np.unique(ids[np.isnan(self._bias[ids])])
        if new.size:
            self._bias[new] = hub_bias(descriptors_of(new), self.reference, self.k)
        corrected = np.asarray(scores, np.float32) - self._bias[ids]
        order = np.argsort(-corrected, kind='stable')[:top_k]
        return corrected[order], ids[order]


def search_map(store, desc: np.ndarray, top_k: int,
               hubness: Optional[HubnessCorrector] = None) -> Tuple[np.ndarray, np.ndarray]:
    """(scores, place ids) of one descriptor's best ``top_k`` map entries, as the matcher
    searches: the map store's search, re-scored with the hubness correction when given (its
    ``candidates`` best plain results). Only valid ids (>= 0) are returned."""
    n = max(top_k, hubness.candidates) if hubness is not None else top_k
    scores, ids = store.search(np.asarray(desc, np.float32)[None], n)
    valid = ids[0] >= 0
    ids, scores = ids[0][valid], scores[0][valid]
    if hubness is not None and ids.size:
        return hubness.rescore(scores, ids, store.descriptors_of, top_k)
    return scores[:top_k], ids[:top_k]


def hubness_corrector(cfg) -> Optional[HubnessCorrector]:
    """The corrector of a MatcherConfig (None when ``hubness_reference`` is empty)."""
    if not cfg.hubness_reference:
        return None
    return HubnessCorrector.from_file(cfg.hubness_reference, cfg.hubness_k,
                                      cfg.hubness_candidates)


def open_map(path, hubness: Optional[HubnessCorrector] = None):
    """``MapStore.open(path)``, refused (and closed again) when ``hubness`` was made for maps
    of another model or width: the matcher retries a refused map every reload period."""
    from vpr_ros.mapstore import MapStore
    store = MapStore.open(path)
    if hubness is not None:
        try:
            hubness.check_map(store.dim, store.encoder)
        except ValueError:
            store.close()
            raise
    return store
