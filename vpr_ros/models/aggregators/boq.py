"""BoQ: Bag-of-Queries aggregation (Ali-bey et al., CVPR 2024), own implementation.

The patch map is projected to ``proj_dim`` channels by a 3x3 convolution (as in the
official code, whose released DINOv2 model feeds it the tokens BEFORE the ViT's final norm);
each of ``num_layers`` blocks refines the tokens with a transformer encoder layer, lets its
learnable queries attend to each other (self-attention) and then to the tokens
(cross-attention). The outputs of all blocks
(num_layers * num_queries rows of proj_dim) are mixed by a linear layer into ``row_dim`` rows,
giving a ``proj_dim * row_dim`` descriptor (384 * 32 = 12288 on DINOv2-B/14, as in the paper).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from vpr_ros.models.aggregators.base import Aggregator, feature_map


def _heads(dim: int) -> int:
    heads = max(1, dim // 64)
    while dim % heads:
        heads -= 1
    return heads


class BoQBlock(nn.Module):
    """Token refinement + learnable queries (self-attention, then cross-attention to tokens)."""

    def __init__(self, dim: int, num_queries: int, num_heads: int):
        super().__init__()
        self.encoder = nn.TransformerEncoderLayer(dim, num_heads, dim_feedforward=4 * dim,
                                                  dropout=0.0, batch_first=True)
        self.queries = nn.Parameter(torch.randn(1, num_queries, dim) * 0.02)
        self.self_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm_q = nn.LayerNorm(dim)
        self.cross_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor):
        x = self.encoder(x)
        q = self.queries.expand(x.shape[0], -1, -1)
        q = self.norm_q(q + self.self_attn(q, q, q, need_weights=False)[0])
        out = self.norm_out(self.cross_attn(q, x, x, need_weights=False)[0])
        return x, out


class BoQ(Aggregator):
    """Bag-of-Queries aggregator; ``out_dim = proj_dim * row_dim``.

    Input: a (B,C,h,w) map or a ``(map, cls)`` tuple (the CLS token is not used).
    """

    OPTIONS = ('proj_dim', 'num_queries', 'num_layers', 'row_dim')

    @classmethod
    def output_width(cls, in_dim: int, proj_dim: Optional[int] = None, row_dim: int = 32,
                     **options) -> int:
        return int(proj_dim or in_dim // 2) * int(row_dim)

    @classmethod
    def fit_width(cls, in_dim: int, dim, options):
        """A requested ``dim`` that is a multiple of proj_dim sets row_dim (unless given)."""
        proj = int(options.get('proj_dim') or in_dim // 2)
        if dim and 'row_dim' not in options and int(dim) % proj == 0:
            options = {**options, 'row_dim': int(dim) // proj}
        return options

    def __init__(self, in_dim: int, proj_dim: Optional[int] = None, num_queries: int = 64,
                 num_layers: int = 2, row_dim: int = 32, num_heads: Optional[int] = None):
        super().__init__()
        proj_dim = int(proj_dim or in_dim // 2)
        if min(proj_dim, num_queries, num_layers, row_dim) < 1:
            raise ValueError('BoQ needs proj_dim, num_queries, num_layers and row_dim >= 1, got '
                             f'{proj_dim}, {num_queries}, {num_layers}, {row_dim}')
        heads = int(num_heads or _heads(proj_dim))
        if proj_dim % heads:
            raise ValueError(f'BoQ proj_dim {proj_dim} is not divisible by num_heads {heads}')
        self.proj = nn.Conv2d(in_dim, proj_dim, kernel_size=3, padding=1)
        self.norm_in = nn.LayerNorm(proj_dim)
        self.blocks = nn.ModuleList(BoQBlock(proj_dim, num_queries, heads)
                                    for _ in range(num_layers))
        self.mix = nn.Linear(num_layers * num_queries, row_dim)
        self.out_dim = self.output_width(in_dim, proj_dim, row_dim)

    def forward(self, feats) -> torch.Tensor:
        x = self.proj(feature_map(feats)).flatten(2).transpose(1, 2)  # (B, N, proj_dim)
        x = self.norm_in(x)
        outs = []
        for block in self.blocks:
            x, out = block(x)
            outs.append(out)
        rows = self.mix(torch.cat(outs, dim=1).transpose(1, 2))  # (B, proj_dim, row_dim)
        return F.normalize(rows.flatten(1), dim=-1)
