"""How similar a real match is, measured on the map itself: the floor below which a frame's
best similarity means "not a place of this map" (a black or blank frame, noise, a lens cap,
another town).

The map's descriptors give two reference levels without any query: the mean similarity of two
unrelated map entries, and the median similarity of each entry to its nearest other entry (a
neighbouring place, or the same place in another condition). A frame of a mapped place matches
at about the second level; degenerate frames stay near the first. The floor lies between them.
Measured with `efficientnet_lite0_vpr` on a 10-place rendered town (160x120): unrelated 0.16,
nearest 0.36, floor 0.24; dusk queries of the town 0.28-0.47; black, white, gray, 1x1 and
noise frames 0.09-0.23.
"""
from __future__ import annotations

import dataclasses

import numpy as np

SAMPLE = 2048      # map entries used (a random subset of larger maps)
POSITION = 0.4     # the floor, from the unrelated level (0) to the nearest-entry level (1)


@dataclasses.dataclass
class SimilarityLevels:
    unrelated: float      # mean cosine of two map entries
    nearest: float        # median cosine of an entry to its nearest other entry
    floor: float          # a frame's best match below this is unrecognised


def map_levels(store, seed: int = 0) -> SimilarityLevels:
    """The similarity levels of ``store`` (a MapStore); floor -inf for maps of < 3 places."""
    n = int(store.num_places)
    if n < 3:
        return SimilarityLevels(float('nan'), float('nan'), float('-inf'))
    ids = np.arange(n) if n <= SAMPLE else np.sort(
        np.random.default_rng(seed).choice(n, SAMPLE, replace=False))
    d = np.asarray(store.descriptors_of(ids), np.float32)
    s = d @ d.T
    np.fill_diagonal(s, np.nan)
    unrelated = float(np.nanmean(s))
    nearest = float(np.median(np.nanmax(s, axis=1)))
    return SimilarityLevels(unrelated, nearest, unrelated + POSITION * (nearest - unrelated))


def from_levels(unrelated: float, nearest: float) -> SimilarityLevels:
    """Levels given as (unrelated, nearest), with the floor at POSITION between them."""
    return SimilarityLevels(float(unrelated), float(nearest),
                            float(unrelated) + POSITION * (float(nearest) - float(unrelated)))


NO_LEVELS = SimilarityLevels(float('nan'), float('nan'), float('-inf'))  # floor off


def levels_for(store, encoder: str, own: SimilarityLevels = None):
    """(levels, note) for descriptors of ``encoder`` searched in ``store``. The map's own levels
    describe its model's space (symmetric search). A query network trained for the map lives
    on another absolute scale (the AsymVPR loss fixes rankings, not cosines): a shipped one
    brings the levels measured for it (vpr_ros.shipped_queries); for any other the floor is
    off and ``note`` says so. ``own``: the map's levels already measured (not read again)."""
    if not encoder or encoder == store.encoder:
        return (own if own is not None else map_levels(store)), ''
    from vpr_ros.shipped_queries import QUERY_PACKAGED
    shipped = QUERY_PACKAGED.get(encoder)
    if shipped is not None and shipped.gallery == store.encoder and shipped.levels:
        return from_levels(*shipped.levels), ''
    return NO_LEVELS, (f'similarity floor off for query network {encoder!r}: the map\'s levels '
                       f'are those of {store.encoder!r} (set min_similarity for a fixed floor)')


def relative_similarity(best: float, levels: SimilarityLevels) -> float:
    """``best`` (a frame's top-1 cosine) on the map's own scale: 0 at the unrelated level,
    1 at the nearest-entry level; NaN when the map is too small to have levels. The soft
    similarity factor of the 'platt_sim' calibration (localization.calibration)."""
    span = levels.nearest - levels.unrelated
    if not (np.isfinite(span) and span > 1e-6 and np.isfinite(best)):
        return float('nan')
    return float((best - levels.unrelated) / span)
