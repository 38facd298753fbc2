"""Frames that show no place, and the gate that keeps them from becoming pose priors.

A lens cap, a blank wall, an over-exposed or broken camera: such a frame still gets a
descriptor, and a query network distilled from street images may put it close to sparse map
images (sky and road). Measured for the shipped ``efficientnet_lite0_query_vpr24`` on
``efficientnet_lite2_vpr24`` maps of held-out towns: a black frame's best map match reached
cosine 0.49, above the matcher's similarity floor (0.35) and the 5th percentile of real
matches (0.43), so no floor can reject it. In the query network's own space the same frames
are unmistakable: they sit at cosine >= 0.88 to ``NoPlaceGate``'s prototypes (synthetic frames
of each kind below, encoded by the same network), real frames at <= 0.73. The gate compares
each frame's descriptor with those prototypes; the query_encoder drops a frame at or above the
network's threshold (measured per network: the shipped cards give it). NumPy and OpenCV only.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence, Tuple

import cv2
import numpy as np

KINDS = ('uniform', 'dark', 'bright', 'noise', 'low_contrast_noise', 'blotches', 'gradient')


def synthetic_frame(kind: str, size: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """One (h, w, 3) uint8 frame that shows no place, of ``kind`` (one of KINDS)."""
    h, w = int(size[0]), int(size[1])
    if kind == 'uniform':
        return np.broadcast_to(rng.integers(0, 256, 3, dtype=np.uint8), (h, w, 3)).copy()
    if kind == 'dark':
        return np.broadcast_to(rng.integers(0, 30, 3, dtype=np.uint8), (h, w, 3)).copy()
    if kind == 'bright':
        return np.broadcast_to(rng.integers(225, 256, 3, dtype=np.uint8), (h, w, 3)).copy()
    if kind == 'noise':
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if kind == 'low_contrast_noise':
        base = rng.uniform(20, 235, 3)
        return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    if kind == 'blotches':
        small = rng.integers(0, 256, (max(2, h // 32), max(2, w // 32), 3), dtype=np.uint8)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    if kind == 'gradient':
        t = np.linspace(0.0, 1.0, w if rng.random() < 0.5 else h, dtype=np.float32)
        a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        ramp = a + t[:, None] * (b - a)
        img = ramp[None, :, :] if len(t) == w else ramp[:, None, :]
        return np.broadcast_to(img, (h, w, 3)).astype(np.uint8)
    raise ValueError(f'unknown degenerate frame kind {kind!r}; one of {KINDS}')


def prototype_frames(size: Sequence[int], per_kind: int = 4, seed: int = 0):
    """(frames (N, h, w, 3) uint8, kinds): ``per_kind`` frames of every kind, plus pure black
    and pure white, at ``size``."""
    rng = np.random.default_rng(seed)
    kinds = [k for k in KINDS for _ in range(per_kind)]
    frames = [synthetic_frame(k, size, rng) for k in kinds]
    h, w = int(size[0]), int(size[1])
    frames += [np.zeros((h, w, 3), np.uint8), np.full((h, w, 3), 255, np.uint8)]
    return np.stack(frames), tuple(kinds) + ('dark', 'bright')


@dataclasses.dataclass
class NoPlaceGate:
    """Descriptors of no-place frames by one query network, and the cosine at which a frame
    counts as one of them."""

    prototypes: np.ndarray   # (N, D) float32, L2-normalised
    kinds: Tuple[str, ...]
    threshold: float

    @classmethod
    def for_encoder(cls, encoder, threshold: float, per_kind: int = 4,
                    batch: int = 8) -> 'NoPlaceGate':
        """Encode the prototype frames with ``encoder`` (a vpr_ros.inference.Encoder)."""
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f'no-place threshold must be in (0, 1], got {threshold}')
        frames, kinds = prototype_frames(encoder.input_size, per_kind)
        descs = np.concatenate([encoder.encode(frames[i:i + batch])
                                for i in range(0, len(frames), batch)])
        return cls(np.asarray(descs, np.float32), kinds, float(threshold))

    def similarity(self, desc: np.ndarray) -> Tuple[float, str]:
        """(highest cosine of ``desc`` to a prototype, that prototype's kind)."""
        d = np.asarray(desc, np.float32).reshape(-1)
        sims = self.prototypes @ (d / max(float(np.linalg.norm(d)), 1e-12))
        i = int(np.argmax(sims))
        return float(sims[i]), self.kinds[i]

    def shows_no_place(self, desc: np.ndarray) -> Tuple[bool, float, str]:
        """(the frame shows no place, its highest prototype cosine, that prototype's kind)."""
        sim, kind = self.similarity(desc)
        return sim >= self.threshold, sim, kind
