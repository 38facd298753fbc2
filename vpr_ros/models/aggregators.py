"""Aggregators: pool backbone features into a global descriptor.

Convolutional backbones give a feature map (B,C,H,W). Transformer backbones (dinov2.py) give
a tuple ``(map (B,C,h,w), cls (B,C))``; GeM uses only the map of such a tuple.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def feature_map(feats) -> torch.Tensor:
    """The (B,C,H,W) map of a backbone output (a tensor or a ``(map, cls)`` tuple)."""
    return feats[0] if isinstance(feats, (tuple, list)) else feats


class GeM(nn.Module):
    """Generalised-mean pooling with a learnable exponent p (Radenović et al.)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6):
        super().__init__()
        self.p = nn.Parameter(torch.ones(1) * p)
        self.eps = eps

    def forward(self, x) -> torch.Tensor:
        x = feature_map(x).clamp(min=self.eps).pow(self.p)
        return x.mean(dim=(-2, -1)).pow(1.0 / self.p)


class MultiScale(nn.Module):
    """Runs ``backbone`` on the image at several scales; returns the list of its outputs."""

    def __init__(self, backbone: nn.Module, scales: Sequence[float] = (1.0, 0.7071)):
        super().__init__()
        if not scales or any(s <= 0 for s in scales):
            raise ValueError(f'scales must be positive factors, got {list(scales)}')
        self.backbone = backbone
        self.scales = tuple(float(s) for s in scales)

    def forward(self, x: torch.Tensor):
        outs = []
        for s in self.scales:
            xs = x if s == 1.0 else F.interpolate(x, scale_factor=s, mode='bilinear',
                                                  align_corners=False)
            outs.append(self.backbone(xs))
        return outs


class MultiScaleGeM(nn.Module):
    """GeM per scale (shared p), L2-normalised and averaged: the width stays C."""

    def __init__(self, p: float = 3.0):
        super().__init__()
        self.gem = GeM(p)

    def forward(self, feats) -> torch.Tensor:
        descs = [F.normalize(self.gem(f), dim=-1) for f in feats]
        return torch.stack(descs, 0).mean(0)
