"""Runs a backbone at several image scales (for multi-scale pooling, e.g. MultiScaleGeM)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class MultiScale(nn.Module):
    """Runs ``backbone`` on the image at several scales; returns the list of its outputs."""

    def __init__(self, backbone: nn.Module, scales: Sequence[float] = (1.0, 0.7071)):
        super().__init__()
        if not scales or any(s <= 0 for s in scales):
            raise ValueError(f'scales must be positive factors, got {list(scales)}')
        self.backbone = backbone
        self.scales = tuple(float(s) for s in scales)
        self.out_channels = getattr(backbone, 'out_channels', None)

    def forward(self, x: torch.Tensor):
        outs = []
        for s in self.scales:
            xs = x if s == 1.0 else F.interpolate(x, scale_factor=s, mode='bilinear',
                                                  align_corners=False)
            outs.append(self.backbone(xs))
        return outs
