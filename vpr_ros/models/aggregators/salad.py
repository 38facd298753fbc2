"""SALAD: optimal-transport aggregation of local features (Izquierdo & Civera, CVPR 2024).

Own implementation. Each patch token gets scores for ``num_clusters`` clusters; a log-domain
Sinkhorn with a dustbin row (which absorbs uninformative tokens) turns them into a soft
assignment; the assigned ``cluster_dim`` features are summed per cluster, intra-normalised and
concatenated with a ``token_dim`` projection of the global (CLS) token:
``out_dim = token_dim + num_clusters * cluster_dim`` (256 + 64 * 128 = 8448 by default).
As in the official code: the cluster block is laid out channel-major (cluster_dim x
num_clusters), only the global token and each cluster are normalised before the final L2 norm,
and the cluster and score MLPs have dropout (0.3) after their first layer.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vpr_ros.models.aggregators.base import Aggregator


def _mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))


def _local_mlp(in_dim: int, hidden: int, out_dim: int, dropout: float) -> nn.Sequential:
    # the official local MLPs: 1x1 conv, Dropout (Identity at 0), ReLU, 1x1 conv
    drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
    return nn.Sequential(nn.Linear(in_dim, hidden), drop, nn.ReLU(), nn.Linear(hidden, out_dim))


def sinkhorn_assignment(scores: torch.Tensor, dustbin: torch.Tensor,
                        iters: int = 3) -> torch.Tensor:
    """Soft assignment (B, m, n) of n tokens to m clusters from scores (B, m, n).

    Marginals: each cluster receives mass 1, the dustbin n - m, each token 1 (all divided by
    n + m). Returns the transport plan rescaled by n + m, dustbin row removed.
    """
    b, m, n = scores.shape
    if n <= m:
        raise ValueError(f'SALAD needs more patch tokens than clusters, got {n} tokens for {m} '
                         f'clusters: use a larger input size or fewer clusters (num_clusters=)')
    s = torch.cat([scores, dustbin.reshape(1, 1, 1).expand(b, 1, n)], dim=1)
    norm = -math.log(n + m)
    log_a = torch.full((m + 1,), norm, dtype=s.dtype)
    log_a[-1] = norm + math.log(n - m)
    log_b = torch.full((n,), norm, dtype=s.dtype)
    u = torch.zeros(b, m + 1, dtype=s.dtype)
    v = torch.zeros(b, n, dtype=s.dtype)
    for _ in range(iters):
        u = log_a - torch.logsumexp(s + v.unsqueeze(1), dim=2)
        v = log_b - torch.logsumexp(s + u.unsqueeze(2), dim=1)
    log_p = s + u.unsqueeze(2) + v.unsqueeze(1) - norm
    return log_p[:, :m].exp()


class SALAD(Aggregator):
    """Sinkhorn Algorithm for Locally Aggregated Descriptors, plus the global token.

    Input: a ``(map (B,C,h,w), cls (B,C))`` tuple from a transformer backbone.
    """

    OPTIONS = ('num_clusters', 'cluster_dim', 'token_dim', 'hidden', 'sinkhorn_iters', 'dropout')

    @classmethod
    def output_width(cls, in_dim: int, num_clusters: int = 64, cluster_dim: int = 128,
                     token_dim: int = 256, **options) -> int:
        return int(token_dim) + int(num_clusters) * int(cluster_dim)

    @classmethod
    def fit_width(cls, in_dim: int, dim, options):
        """A requested ``dim`` = token_dim + num_clusters * k sets cluster_dim = k (unless
        given)."""
        rest = int(dim or 0) - int(options.get('token_dim', 256))
        clusters = int(options.get('num_clusters', 64))
        if dim and 'cluster_dim' not in options and rest > 0 and rest % clusters == 0:
            options = {**options, 'cluster_dim': rest // clusters}
        return options

    def __init__(self, in_dim: int, num_clusters: int = 64, cluster_dim: int = 128,
                 token_dim: int = 256, hidden: int = 512, sinkhorn_iters: int = 3,
                 dropout: float = 0.3):
        super().__init__()
        if min(num_clusters, cluster_dim, token_dim, hidden, sinkhorn_iters) < 1:
            raise ValueError('SALAD sizes and sinkhorn_iters must be >= 1')
        self.token_mlp = _mlp(in_dim, hidden, token_dim)
        self.cluster_mlp = _local_mlp(in_dim, hidden, cluster_dim, dropout)
        self.score_mlp = _local_mlp(in_dim, hidden, num_clusters, dropout)
        self.dustbin = nn.Parameter(torch.tensor(1.0))
        self.iters = int(sinkhorn_iters)
        self.out_dim = self.output_width(in_dim, num_clusters, cluster_dim, token_dim)

    def forward(self, feats) -> torch.Tensor:
        if not isinstance(feats, (tuple, list)) or len(feats) != 2:
            raise TypeError('SALAD needs a (patch map, cls token) tuple from a ViT backbone')
        fmap, cls = feats
        x = fmap.flatten(2).transpose(1, 2)  # (B, N, C)
        local = self.cluster_mlp(x)  # (B, N, l)
        p = sinkhorn_assignment(self.score_mlp(x).transpose(1, 2), self.dustbin, self.iters)
        agg = F.normalize(torch.bmm(p, local), dim=2)  # (B, m, l): per-cluster intra-norm
        glob = F.normalize(self.token_mlp(cls), dim=-1)
        out = torch.cat([glob, agg.transpose(1, 2).flatten(1)], dim=-1)
        return F.normalize(out, dim=-1)
