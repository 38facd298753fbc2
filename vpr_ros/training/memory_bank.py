"""Geographical memory bank: one gallery centroid and one diagonal covariance per place.

Built once from the frozen gallery features of the training images (no k-NN search): the
centroid of place j is the L2-normalised mean of its gallery features, its covariance the
per-dimension (biased) variance of those features around their unnormalised mean.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch


@dataclasses.dataclass
class MemoryBank:
    """Per-place gallery statistics, row ``j`` belonging to place id ``place_ids[j]``."""

    place_ids: np.ndarray        # (P,) int
    centroids: torch.Tensor      # (P, D) L2-normalised
    variances: torch.Tensor      # (P, D) diagonal of the per-place covariance
    counts: np.ndarray           # (P,) images per place
    build_seconds: float = 0.0

    @classmethod
    def from_features(cls, feats, labels) -> 'MemoryBank':
        """Group gallery ``feats`` (N, D) by place ``labels`` (N,)."""
        t0 = time.perf_counter()
        f = torch.as_tensor(np.asarray(feats, dtype=np.float32))
        lab = np.asarray(labels, dtype=np.int64)
        uniq, inv, counts = np.unique(lab, return_inverse=True, return_counts=True)
        inv_t = torch.as_tensor(inv)
        n = torch.as_tensor(counts, dtype=torch.float32)[:, None]
        sums = torch.zeros(len(uniq), f.shape[1]).index_add_(0, inv_t, f)
        sq = torch.zeros(len(uniq), f.shape[1]).index_add_(0, inv_t, f * f)
        mean = sums / n
        var = (sq / n - mean * mean).clamp_min_(0.0)
        cents = torch.nn.functional.normalize(mean, dim=1)
        return cls(uniq, cents, var, counts, time.perf_counter() - t0)

    def __len__(self) -> int:
        return len(self.place_ids)

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    def rows_of(self, labels) -> torch.Tensor:
        """Bank rows of place ids ``labels`` (every id must be in the bank)."""
        lab = np.asarray(labels, dtype=np.int64)
        rows = np.searchsorted(self.place_ids, lab)
        if np.any(rows >= len(self.place_ids)) or np.any(
                self.place_ids[np.minimum(rows, len(self.place_ids) - 1)] != lab):
            raise KeyError('place id(s) not in the memory bank')
        return torch.as_tensor(rows, dtype=torch.long)

    def nbytes(self) -> int:
        """Memory of centroids + variances (float32)."""
        return int(self.centroids.numel() + self.variances.numel()) * 4
