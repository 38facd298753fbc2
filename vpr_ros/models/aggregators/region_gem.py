"""CricaVPR's aggregation: 14 region tokens (global, 2x2 grid, 3x3 grid) of GeM, optionally
through the cross-image encoder; flattened and L2-normalised (14 x C)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vpr_ros.models.aggregators.base import Aggregator
from vpr_ros.models.aggregators.tdda import cross_image_encoder, region_bounds


class RegionGeM(Aggregator):
    """(patch map, CLS) -> 14 region tokens (global, 2x2, 3x3), flattened and L2-normalised."""

    OPTIONS = ('global_token', 'cross_image')

    @classmethod
    def output_width(cls, in_dim: int, **options) -> int:
        return 14 * int(in_dim)

    def __init__(self, dim: int, global_token: str = 'cls', cross_image: bool = False,
                 p: float = 3.0):
        super().__init__()
        if global_token not in ('cls', 'gem'):
            raise ValueError(f"global_token must be 'cls' or 'gem', got {global_token!r}")
        self.global_token = global_token
        self.out_dim = self.output_width(dim)
        self.p = nn.Parameter(torch.ones(1) * p)
        self.encoder = cross_image_encoder(dim) if cross_image else None

    def _gem(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(-2, -1)).pow(1.0 / self.p)

    def tokens(self, feats) -> torch.Tensor:
        """The 14 tokens (B, 14, C) before the cross-image encoder."""
        fmap, cls = feats
        x = F.normalize(fmap, dim=1).clamp(min=1e-6).pow(self.p)
        h, w = int(fmap.shape[-2]), int(fmap.shape[-1])
        out = [cls if self.global_token == 'cls' else self._gem(x)]
        for level in (0, 1):
            ys, xs = region_bounds(h)[level], region_bounds(w)[level]
            for i in range(len(ys) - 1):
                for j in range(len(xs) - 1):
                    out.append(self._gem(x[:, :, ys[i]:ys[i + 1], xs[j]:xs[j + 1]]))
        return torch.stack(out, dim=1)

    def forward(self, feats) -> torch.Tensor:
        t = self.tokens(feats)
        if self.encoder is not None:
            t = self.encoder(t)
        return F.normalize(t.flatten(1), dim=-1)
