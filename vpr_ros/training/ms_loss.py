"""Multi-similarity loss and miner (Wang et al., CVPR'19), as in pytorch-metric-learning.

On cosine similarities S of L2-normalised embeddings, for every anchor i:

* miner (epsilon): keep positive j if S_ij - eps < max_{n neg} S_in (hard positives), keep
  negative k if S_ik + eps > min_{p pos} S_ip (hard negatives); the anchor itself is never a
  pair;
* loss: 1/alpha * log(1 + sum_{kept pos} exp(-alpha (S_ij - base)))
        + 1/beta * log(1 + sum_{kept neg} exp(beta (S_ik - base))),
  averaged over all anchors of the batch (anchors without kept pairs add 0), like
  pytorch-metric-learning's MultiSimilarityLoss with its default mean reducer.

D2-VPR stage 2, the gallery fine-tuning and the symmetric student of ``train asym`` use it
with alpha 1, beta 50, base 0, epsilon 0.1 on P places x K images batches. With ``ref`` (a
second embedding set of the same images, e.g. their frozen gallery descriptors) the pairs are
anchor i of ``emb`` against every j of ``ref``: cross-model retrieval, where the same image's
reference (j = i) is a positive too.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn


def _pairs(labels: torch.Tensor, self_pairs: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    same = labels[:, None] == labels[None, :]
    if self_pairs:
        return same, ~same
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def ms_mine(sim: torch.Tensor, labels: torch.Tensor, epsilon: float = 0.1,
            self_pairs: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """(pos_mask, neg_mask) (B, B) bool of the pairs the multi-similarity miner keeps
    (``self_pairs``: the diagonal is a positive, as against another model's embeddings)."""
    pos, neg = _pairs(labels, self_pairs)
    inf = torch.tensor(float('inf'), dtype=sim.dtype, device=sim.device)
    hardest_neg = torch.where(neg, sim, -inf).amax(dim=1, keepdim=True)
    easiest_pos = torch.where(pos, sim, inf).amin(dim=1, keepdim=True)
    return pos & (sim - epsilon < hardest_neg), neg & (sim + epsilon > easiest_pos)


def _log1p_sum_exp(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log(1 + sum_{mask} exp(x)) per row, numerically stable."""
    zero = torch.zeros_like(x[:, :1])
    x = torch.where(mask, x, torch.full_like(x, float('-inf')))
    return torch.logsumexp(torch.cat([zero, x], dim=1), dim=1)


def multi_similarity_loss(emb: torch.Tensor, labels: torch.Tensor, alpha: float = 1.0,
                          beta: float = 50.0, base: float = 0.0,
                          epsilon: Optional[float] = 0.1,
                          ref: Optional[torch.Tensor] = None) -> torch.Tensor:
    """MS loss of embeddings (B, D) (normalised here) with place labels (B,).

    ``epsilon=None`` disables the miner (all pairs); ``ref`` (B, D): the anchors are ``emb``,
    the pairs their similarities to ``ref`` (same labels; gradients flow into ``emb`` only if
    ``ref`` is frozen).
    """
    emb = F.normalize(emb, dim=-1)
    cross = ref is not None
    sim = emb @ (F.normalize(ref, dim=-1) if cross else emb).T
    if epsilon is None:
        pos, neg = _pairs(labels, cross)
    else:
        pos, neg = ms_mine(sim.detach(), labels, epsilon, cross)
    pos_loss = _log1p_sum_exp(-alpha * (sim - base), pos) / alpha
    neg_loss = _log1p_sum_exp(beta * (sim - base), neg) / beta
    return (pos_loss + neg_loss).mean()


class MultiSimilarityLoss(nn.Module):
    """Module form of :func:`multi_similarity_loss` (miner included)."""

    def __init__(self, alpha: float = 1.0, beta: float = 50.0, base: float = 0.0,
                 epsilon: Optional[float] = 0.1):
        super().__init__()
        self.alpha, self.beta, self.base, self.epsilon = alpha, beta, base, epsilon

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return multi_similarity_loss(emb, labels, self.alpha, self.beta, self.base,
                                     self.epsilon)
