"""CSD baseline: k-NN compatible training (Wu et al., CVPR 2022, "Contextual Similarity
Distillation for Asymmetric Image Retrieval").

Precompute (the expensive step, timed): for every training image, its k nearest neighbours
among the gallery features of all training images (faiss, inner product on L2-normalised
features). The anchor set of image i is [i itself] + its k neighbours. Training matches the
softmax of the query's similarities to the anchors' gallery embeddings to the gallery's own
softmax (KL divergence), plus a direct term ``lam * ||q - g||^2`` pulling q onto g.
"""
from __future__ import annotations

import time
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F


def knn_neighbours(feats: np.ndarray, k: int = 16, threads: int = 0) -> Tuple[np.ndarray, float]:
    """(N, 1+k) anchor rows (self first, then the k nearest others) and the seconds it took."""
    import faiss
    if threads:
        faiss.omp_set_num_threads(int(threads))
    t0 = time.perf_counter()
    x = np.ascontiguousarray(feats, dtype=np.float32)
    k = min(int(k), len(x) - 1)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    _, idx = index.search(x, k + 1)
    rows = np.arange(len(x))[:, None]
    # Drop the image itself wherever faiss returned it (ties may move it off column 0).
    others = np.where(idx == rows, -1, idx)
    out = np.empty((len(x), k + 1), dtype=np.int64)
    out[:, 0] = rows[:, 0]
    for i in range(len(x)):
        o = others[i][others[i] >= 0]
        out[i, 1:] = o[:k]
    return out, time.perf_counter() - t0


def csd_loss(q: torch.Tensor, g: torch.Tensor, anchors: torch.Tensor, tau_q: float = 0.05,
             tau_g: float = 0.05, lam: float = 1.0) -> torch.Tensor:
    """KL(p_gallery || p_query) over the anchors + ``lam`` * mean ||q - g||^2.

    q, g: (B, D) query / gallery embeddings of the batch images; anchors: (B, K, D) gallery
    embeddings of each image's anchor set.
    """
    log_p_q = F.log_softmax(torch.einsum('bd,bkd->bk', q, anchors) / tau_q, dim=1)
    p_g = F.softmax(torch.einsum('bd,bkd->bk', g, anchors) / tau_g, dim=1)
    kl = F.kl_div(log_p_q, p_g, reduction='batchmean')
    direct = ((q - g) ** 2).sum(dim=1).mean()
    return kl + lam * direct
