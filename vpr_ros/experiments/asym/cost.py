"""How the training-side cost of ours and of the k-NN baseline grows with the gallery.

The gallery features of the training set are tiled (each copy jittered and given new place
ids) to 1x, 2x, 4x... their size; for each size we time what each method must precompute
(ours: the memory bank, one pass over the features; CSD: the exact k-NN graph, quadratic) and
the per-iteration cost of each loss on one batch, which for ours grows with the number of
places (every other place is a negative) and for CSD does not (k anchors per image).
"""
import time
from typing import Dict, List, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vpr_ros.training.asym_loss import asym_loss
from vpr_ros.training.csd import csd_loss, knn_neighbours
from vpr_ros.training.memory_bank import MemoryBank


def _tiled(feats: np.ndarray, labels: np.ndarray, times: int, seed: int):
    rng = np.random.default_rng(seed)
    span = int(labels.max()) + 1
    fs, ls = [feats], [labels]
    for c in range(1, times):
        f = feats + rng.normal(0, 0.02, feats.shape).astype(np.float32)
        fs.append(f / np.linalg.norm(f, axis=1, keepdims=True))
        ls.append(labels + c * span)
    return np.concatenate(fs).astype(np.float32), np.concatenate(ls)


def _loss_ms(fn, q: torch.Tensor, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        qq = q.clone().requires_grad_(True)
        t0 = time.perf_counter()
        fn(qq).backward()
        times.append(1000 * (time.perf_counter() - t0))
    return float(np.median(times))


def precompute_growth(feats: np.ndarray, labels: np.ndarray, multiples: Sequence[int] = (1, 2, 4),
                      k: int = 16, tau: float = 0.05, gamma: float = 15.0, batch: int = 64,
                      threads: int = 2, seed: int = 0, centroid_weight: float = 0.0
                      ) -> List[Dict]:
    """One row per gallery size: images, places, bank build s / MB, k-NN s / anchor MB and
    the loss forward+backward ms of one batch for ours (bank negatives, the centroid term at
    ``centroid_weight``, as trained) and CSD."""
    rows = []
    rng = np.random.default_rng(seed)
    MemoryBank.from_features(feats[:8], labels[:8])   # first-call warm-up, not timed
    for m in multiples:
        f, lab = _tiled(np.asarray(feats, np.float32), np.asarray(labels), int(m), seed)
        bank = MemoryBank.from_features(f, lab)
        anchors, knn_s = knn_neighbours(f, k, threads)
        idx = rng.choice(len(f), batch, replace=False)
        g = torch.from_numpy(f[idx])
        q = F.normalize(g + 0.1 * torch.randn_like(g), dim=1)
        rows_t = bank.rows_of(lab[idx])
        ours_ms = _loss_ms(lambda x: asym_loss(F.normalize(x, dim=1), g, rows_t, bank.centroids,
                                               bank.variances, tau, gamma,
                                               centroid_weight=centroid_weight), q)
        ga = torch.from_numpy(f[anchors[idx]])
        csd_ms = _loss_ms(lambda x: csd_loss(F.normalize(x, dim=1), g, ga, tau, tau), q)
        rows.append({'images': int(len(f)), 'places': int(len(bank)),
                     'bank_build_s': bank.build_seconds, 'bank_MB': bank.nbytes() / 1e6,
                     'knn_s': knn_s, 'knn_anchors_MB': anchors.nbytes / 1e6,
                     'ours_loss_ms': ours_ms, 'csd_loss_ms': csd_ms})
    return rows
