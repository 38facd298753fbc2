"""Training batches shared by the trainers: P x K place-balanced index batches and the query
network's input tensors (with the light/crop jitter of ``vpr-ros train asym``)."""
from __future__ import annotations

from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F


def place_batches(labels: np.ndarray, places_per_batch: int, per_place: int,
                  rng: np.random.Generator) -> List[np.ndarray]:
    """One epoch of P x K index batches: every place once, K images each (drawn with
    replacement only when a place has fewer than K); a last batch of fewer than 2 places is
    dropped."""
    by_place = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    order = rng.permutation(np.unique(labels))
    out = []
    for s in range(0, len(order), places_per_batch):
        group = order[s:s + places_per_batch]
        if len(group) >= 2:
            out.append(np.concatenate([
                rng.choice(by_place[c], per_place, replace=len(by_place[c]) < per_place)
                for c in group]))
    return out


def to_tensor(images: np.ndarray, mean, std, augment: bool = False,
              gen: Optional[torch.Generator] = None) -> torch.Tensor:
    """(B,h,w,3) uint8 -> normalised (B,3,h,w); ``augment`` jitters light and crop."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    if augment:
        b = x.shape[0]
        gain = torch.empty(b, 1, 1, 1).uniform_(0.5, 1.5, generator=gen)
        x = (x * gain + torch.empty(b, 1, 1, 1).uniform_(-0.1, 0.1, generator=gen)).clamp(0, 1)
        scale = torch.empty(b).uniform_(0.8, 1.0, generator=gen)
        shift = (torch.rand(b, 2, generator=gen) * 2 - 1) * (1 - scale)[:, None]
        theta = torch.zeros(b, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = scale
        theta[:, :, 2] = shift
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode='bilinear', padding_mode='border', align_corners=False)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (x - m) / s
