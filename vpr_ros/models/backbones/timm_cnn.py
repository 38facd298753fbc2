"""Any timm CNN (or hybrid) as a backbone: its last feature map (B,C,H,W)."""
from __future__ import annotations

import timm
from torch import nn


class TimmFeatureMap(nn.Module):
    """The last feature map (B,C,H,W) of a timm model (classifier and pooling removed)."""

    def __init__(self, timm_name: str, pretrained: bool = False):
        super().__init__()
        # forward_features never applies the head, so the pooling can stay (some timm models,
        # e.g. efficientvit_b2, refuse global_pool='').
        self.net = timm.create_model(timm_name, pretrained=pretrained, num_classes=0)
        self.out_channels = self.net.num_features

    def forward(self, x):
        return self.net.forward_features(x)
