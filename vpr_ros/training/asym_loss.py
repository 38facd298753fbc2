"""AsymVPR loss with implicit embedding augmentation.

For a query embedding q (from the query network) of image x, the frozen gallery embedding g of
the same image is the positive and the memory-bank centroids c_j of other places are the
negatives::

    L = -log( e^{q.g/t} / (e^{q.g/t} + sum_j e^{q.c_j/t + gamma/(2 t^2) q^T Sigma_j q}) )

The extra term is the closed-form upper bound of the expected loss when each negative is
sampled from N(c_j, gamma * Sigma_j) (ISDA-style implicit augmentation; gamma=0 turns it off).
Sigma_j is the diagonal per-place gallery covariance, so q^T Sigma_j q = sum_d q_d^2 Sigma_jd.

Negatives: ``'bank'`` uses every other place in the memory bank (the default; P x D matmul,
cheap for thousands of places), ``'batch'`` only the other places present in the batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def asym_logits(q: torch.Tensor, g: torch.Tensor, rows: torch.Tensor,
                centroids: torch.Tensor, variances: torch.Tensor, tau: float = 0.05,
                gamma: float = 15.0, negatives: str = 'bank') -> torch.Tensor:
    """(B, 1+P) logits: column 0 the positive, then one column per negative place.

    ``rows`` (B,) are the memory-bank rows of the images' own places; their columns are set
    to -inf so that a place is never its own negative.
    """
    pos = (q * g).sum(dim=1, keepdim=True) / tau
    cols = torch.arange(centroids.shape[0], device=q.device)
    if negatives == 'batch':
        cols = torch.unique(rows)
    elif negatives != 'bank':
        raise ValueError(f'negatives must be bank or batch, got {negatives!r}')
    neg = q @ centroids[cols].T / tau
    if gamma:
        neg = neg + (gamma / (2.0 * tau * tau)) * ((q * q) @ variances[cols].T)
    own = rows[:, None] == cols[None, :]
    neg = neg.masked_fill(own, float('-inf'))
    return torch.cat([pos, neg], dim=1)


def asym_loss(q: torch.Tensor, g: torch.Tensor, rows: torch.Tensor, centroids: torch.Tensor,
              variances: torch.Tensor, tau: float = 0.05, gamma: float = 15.0,
              negatives: str = 'bank') -> torch.Tensor:
    """Mean AsymVPR loss of a batch (see the module docstring)."""
    logits = asym_logits(q, g, rows, centroids, variances, tau, gamma, negatives)
    target = torch.zeros(len(q), dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, target)
