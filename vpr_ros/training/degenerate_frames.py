"""Degenerate frames a query network must not mistake for places (a lens cap, a blank wall, a
broken camera), taught by the gallery model itself.

A query network distilled only from real street images maps a black, white, gray or noise frame
wherever its features happen to fall: measured for a Lite0 network distilled into
``efficientnet_lite2_vpr24``, such frames matched the gallery's map at cosine 0.66-0.74, above
the median real match (0.54), so no similarity floor could reject them. The gallery model puts
the same frames at 0.25-0.28 (real matches: 5th percentile 0.36). ``DegenerateBank`` holds such
frames at the query input size together with the gallery's descriptors of them; the trainer
appends a few to every batch with those descriptors as targets, so the query network inherits
the gallery's "this is no place" answer.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Sequence

import cv2
import numpy as np

from vpr_ros.no_place import KINDS, synthetic_frame  # noqa: F401 - re-exported


@dataclasses.dataclass
class DegenerateBank:
    """Degenerate frames at the query input size and the gallery's descriptors of them."""

    images: np.ndarray      # (N, h, w, 3) uint8 at the query network's input size
    gallery: np.ndarray     # (N, D) float32: the gallery model's descriptor of each frame
    kinds: tuple            # kind of each frame
    build_seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, k: int, rng: np.random.Generator):
        """(images, gallery descriptors) of ``k`` frames drawn with replacement."""
        idx = rng.integers(0, len(self), k)
        return self.images[idx], self.gallery[idx]

    def summary(self) -> dict:
        return {'frames': len(self), 'kinds': sorted(set(self.kinds)),
                'build_seconds': self.build_seconds}


def build_bank(gallery, query_size: Sequence[int], n: int = 128, seed: int = 0,
               batch_size: int = 16) -> DegenerateBank:
    """``n`` degenerate frames made at the gallery's input size (so the gallery sees them as it
    sees a camera frame), encoded by ``gallery`` and area-resized to ``query_size``."""
    import torch
    if n <= 0:
        raise ValueError('a degenerate-frame bank needs at least one frame')
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    gsize = tuple(int(v) for v in gallery.input_size)
    kinds = tuple(KINDS[i % len(KINDS)] for i in range(n))
    full = [synthetic_frame(k, gsize, rng) for k in kinds]
    descs = []
    with torch.inference_mode():
        for s in range(0, n, batch_size):
            descs.append(gallery.encode(np.stack(full[s:s + batch_size])))
    h, w = int(query_size[0]), int(query_size[1])
    small = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in full])
    return DegenerateBank(small, np.concatenate(descs).astype(np.float32), kinds,
                          time.perf_counter() - t0)
