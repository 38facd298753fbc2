"""AsymVPR loss with implicit embedding augmentation.

For a query embedding q (from the query network) of image x, the frozen gallery embedding g of
the same image is the positive and the memory-bank centroids c_j of other places are the
negatives::

    L = -log( e^{q.g/t} / (e^{q.g/t} + sum_j e^{q.c_j/t + gamma/(2 t^2) q^T Sigma_j q}) )

The extra term is the closed-form upper bound of the expected loss when each negative is
sampled from N(c_j, gamma * Sigma_j) (ISDA-style implicit augmentation; gamma=0 turns it off).
Sigma_j is the diagonal per-place gallery covariance, so q^T Sigma_j q = sum_d q_d^2 Sigma_jd.

``centroid_weight > 0`` adds a place-level term (not in the paper): the same softmax with the
image's own place centroid as the positive, so that queries are also pulled towards the
condition-averaged place rather than only towards the gallery embedding of their own image.

``cross_weight > 0`` adds another term not in the paper: the multi-similarity loss of the queries
against the gallery embeddings of the batch (``ms_loss``, with ``ref``), which is the task the
map is searched for: a night query against the gallery embeddings of the other images of its
place (positives) and of the other places in the batch (negatives), no k-NN.

``self_weight > 0`` adds the symmetric student's own loss on the queries: the multi-similarity
loss of the batch's queries among themselves (a night query against the day queries of its
place), which asks the query network for condition-invariant descriptors directly; the other
terms only reach that through the gallery's descriptors, which agree across conditions far less.

``align_weight > 0`` adds ``align_weight * mean(1 - cos(q, g))``: the contrastive terms only rank
q's similarities (a q nearly orthogonal to g can still rank its place first among the bank),
this one asks q to be the gallery's descriptor of the image, which is what a map of unseen
places, and a large map, needs.

``instance_weight > 0`` adds a term not in the paper, the map search itself: a softmax of q over
the gallery embeddings of every training image (an instance bank, no k-NN), whose positives are
the other images of q's place (its own image left out, as a map never holds the query) and whose
negatives are all images of other places. The centroid terms rank q against place averages; a
map holds single images, and a large one many near look-alikes.

``gamma_at`` gives gamma per step: constant, or ISDA's ramp lambda_t = lambda_0 * t / T.

Negatives: ``'bank'`` uses every other place in the memory bank (the default; P x D matmul,
cheap for thousands of places), ``'batch'`` only the other places present in the batch.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from vpr_ros.training.ms_loss import multi_similarity_loss


def centroid_logits(q: torch.Tensor, rows: torch.Tensor, centroids: torch.Tensor,
                    variances: torch.Tensor, tau: float = 0.05, gamma: float = 15.0,
                    negatives: str = 'bank') -> Tuple[torch.Tensor, torch.Tensor]:
    """((B, P) logits of q against the memory-bank centroids, (B, P) bool mask of each image's
    own place). The implicit augmentation term is added to the other places' columns only.

    ``rows`` (B,) are the memory-bank rows of the images' own places.
    """
    cols = torch.arange(centroids.shape[0], device=q.device)
    if negatives == 'batch':
        cols = torch.unique(rows)
    elif negatives != 'bank':
        raise ValueError(f'negatives must be bank or batch, got {negatives!r}')
    logits = q @ centroids[cols].T / tau
    own = rows[:, None] == cols[None, :]
    if gamma:
        aug = (gamma / (2.0 * tau * tau)) * ((q * q) @ variances[cols].T)
        logits = logits + aug.masked_fill(own, 0.0)
    return logits, own


def asym_logits(q: torch.Tensor, g: torch.Tensor, rows: torch.Tensor,
                centroids: torch.Tensor, variances: torch.Tensor, tau: float = 0.05,
                gamma: float = 15.0, negatives: str = 'bank') -> torch.Tensor:
    """(B, 1+P) logits: column 0 the positive, then one column per negative place; the
    columns of the images' own places are -inf (a place is never its own negative)."""
    neg, own = centroid_logits(q, rows, centroids, variances, tau, gamma, negatives)
    return _with_positive(q, g, tau, neg, own)


def _with_positive(q, g, tau, neg, own):
    pos = (q * g).sum(dim=1, keepdim=True) / tau
    return torch.cat([pos, neg.masked_fill(own, float('-inf'))], dim=1)


def asym_loss(q: torch.Tensor, g: torch.Tensor, rows: torch.Tensor, centroids: torch.Tensor,
              variances: torch.Tensor, tau: float = 0.05, gamma: float = 15.0,
              negatives: str = 'bank', centroid_weight: float = 0.0,
              cross_weight: float = 0.0, align_weight: float = 0.0,
              self_weight: float = 0.0, instance_weight: float = 0.0,
              instances: Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None
              ) -> torch.Tensor:
    """Mean AsymVPR loss of a batch (see the module docstring); ``instances`` is
    (gallery embeddings (N, D), their bank rows (N,), the batch's own indices (B,)) for the
    instance term."""
    cen, own = centroid_logits(q, rows, centroids, variances, tau, gamma, negatives)
    target = torch.zeros(len(q), dtype=torch.long, device=q.device)
    loss = F.cross_entropy(_with_positive(q, g, tau, cen, own), target)
    if centroid_weight:
        loss = loss + centroid_weight * F.cross_entropy(cen, own.float().argmax(dim=1))
    if cross_weight:
        loss = loss + cross_weight * multi_similarity_loss(q, rows, ref=g)
    if self_weight:
        loss = loss + self_weight * multi_similarity_loss(q, rows)
    if align_weight:
        loss = loss + align_weight * (1.0 - F.cosine_similarity(q, g, dim=1)).mean()
    if instance_weight:
        if instances is None:
            raise ValueError('instance_weight needs the instance bank (instances=...)')
        loss = loss + instance_weight * instance_loss(q, rows, *instances, tau=tau)
    return loss


def instance_loss(q: torch.Tensor, rows: torch.Tensor, inst: torch.Tensor,
                  inst_rows: torch.Tensor, own: torch.Tensor, tau: float = 0.05
                  ) -> torch.Tensor:
    """Multi-positive softmax of q (B, D) over gallery instances ``inst`` (N, D): positives
    the instances of q's place (bank row ``rows``) but q's own image (instance ``own``)."""
    logits = q @ inst.T / tau
    same = inst_rows[None, :] == rows[:, None]
    self_col = torch.zeros_like(same)
    self_col[torch.arange(len(q)), own] = True
    logits = logits.masked_fill(self_col, float('-inf'))
    pos = logits.masked_fill(~same | self_col, float('-inf'))
    has_pos = (same & ~self_col).any(dim=1)
    if not bool(has_pos.any()):
        return q.sum() * 0.0
    return (torch.logsumexp(logits, 1) - torch.logsumexp(pos, 1))[has_pos].mean()


def gamma_at(schedule: str, gamma: float, step: int, total: int) -> float:
    """The augmentation strength at ``step`` of ``total``: ``'constant'`` gamma throughout;
    ``'ramp'`` ISDA's lambda_t = lambda_0 * t / T (0 at the start, gamma at the last step), so
    the augmentation grows as the query network's features become meaningful."""
    if schedule == 'constant':
        return gamma
    if schedule == 'ramp':
        return gamma * min(1.0, step / max(1, total))
    raise ValueError(f'gamma_schedule must be constant or ramp, got {schedule!r}')
