"""Geographic de-duplication of new places against a map (and against each other).

A new place is skipped only when an existing place is close in position AND heading AND
appearance, so different viewpoints and conditions (day/night, seasons) of a spot are kept.
"""
from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from typing import Callable, List

import numpy as np


@dataclasses.dataclass
class DedupConfig:
    """Skip a place if one within ``radius_m`` and ``yaw_deg`` has cosine > ``similarity``."""

    radius_m: float = 2.0
    yaw_deg: float = 30.0
    similarity: float = 0.9

    def __post_init__(self):
        if self.radius_m < 0 or not 0 <= self.yaw_deg <= 180 or not -1 <= self.similarity <= 1:
            raise ValueError(f'bad DedupConfig {self}: radius_m >= 0, 0 <= yaw_deg <= 180, '
                             f'-1 <= similarity <= 1')


class _Grid:
    """Sorted-cell spatial hash of (N,2) points for radius queries (vectorised build)."""

    def __init__(self, xy: np.ndarray, cell: float):
        self.cell = cell
        self.keys = self._key(np.floor(xy / cell).astype(np.int64))
        self.order = np.argsort(self.keys, kind='stable')
        self.sorted = self.keys[self.order]

    @staticmethod
    def _key(c: np.ndarray) -> np.ndarray:
        return (c[..., 0] << 32) ^ (c[..., 1] & 0xFFFFFFFF)

    def near(self, x: float, y: float) -> np.ndarray:
        cx, cy = int(math.floor(x / self.cell)), int(math.floor(y / self.cell))
        out = []
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                k = self._key(np.array([cx + dx, cy + dy], np.int64))
                lo, hi = np.searchsorted(self.sorted, [k, k + 1])
                out.append(self.order[lo:hi])
        return np.concatenate(out) if out else np.zeros(0, np.int64)


def dedup_mask(cfg: DedupConfig, new_geo: np.ndarray, new_desc: np.ndarray,
               old_geo: np.ndarray, old_desc: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Boolean keep-mask over the new places.

    ``new_geo``/``old_geo`` are (N,4) x, y, z, yaw; ``new_desc`` (N,dim) float32 L2-normalised;
    ``old_desc(ids)`` returns existing descriptors. Accepted new places count as existing for
    the ones after them.
    """
    radius = max(cfg.radius_m, 1e-6)
    cos_yaw = math.cos(math.radians(cfg.yaw_deg))
    grid = _Grid(old_geo[:, :2], radius) if len(old_geo) else None
    accepted = defaultdict(list)  # cell -> indices into new arrays
    keep = np.ones(len(new_geo), bool)

    def close(geo_c, i):
        d = np.hypot(geo_c[:, 0] - new_geo[i, 0], geo_c[:, 1] - new_geo[i, 1])
        dyaw = np.cos(geo_c[:, 3] - new_geo[i, 3])  # cos of the wrapped yaw difference
        return (d <= cfg.radius_m) & (dyaw >= cos_yaw - 1e-12)

    for i in range(len(new_geo)):
        x, y = new_geo[i, 0], new_geo[i, 1]
        if grid is not None:
            cand = grid.near(x, y)
            cand = cand[close(old_geo[cand], i)] if cand.size else cand
            if cand.size and np.max(old_desc(np.sort(cand)) @ new_desc[i]) > cfg.similarity:
                keep[i] = False
                continue
        cx, cy = int(math.floor(x / radius)), int(math.floor(y / radius))
        mine: List[int] = [j for dx in (-1, 0, 1) for dy in (-1, 0, 1)
                           for j in accepted.get((cx + dx, cy + dy), ())]
        if mine:
            idx = np.array(mine)
            idx = idx[close(new_geo[idx], i)]
            if idx.size and np.max(new_desc[idx] @ new_desc[i]) > cfg.similarity:
                keep[i] = False
                continue
        accepted[(cx, cy)].append(i)
    return keep
