"""GeM: generalised-mean pooling (Radenović et al.), single- and multi-scale."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vpr_ros.models.aggregators.base import Aggregator, feature_map


class GeM(Aggregator):
    """Generalised-mean pooling with a learnable exponent p; width = the input width.

    ``in_dim`` (optional) only declares the width (``out_dim``); the pooling works on any C.
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6, in_dim: int = 0):
        super().__init__()
        self.p = nn.Parameter(torch.ones(1) * p)
        self.eps = eps
        self.out_dim = self.output_width(in_dim)

    @classmethod
    def output_width(cls, in_dim: int, **options) -> int:
        return int(in_dim)

    def forward(self, x) -> torch.Tensor:
        x = feature_map(x).clamp(min=self.eps).pow(self.p)
        return x.mean(dim=(-2, -1)).pow(1.0 / self.p)


class MultiScaleGeM(Aggregator):
    """GeM per scale (shared p), L2-normalised and averaged: the width stays C.

    Input: the list of backbone outputs of backbones.MultiScale.
    """

    def __init__(self, p: float = 3.0, in_dim: int = 0):
        super().__init__()
        self.gem = GeM(p)
        self.out_dim = self.output_width(in_dim)

    @classmethod
    def output_width(cls, in_dim: int, **options) -> int:
        return int(in_dim)

    def forward(self, feats) -> torch.Tensor:
        descs = [F.normalize(self.gem(f), dim=-1) for f in feats]
        return torch.stack(descs, 0).mean(0)
