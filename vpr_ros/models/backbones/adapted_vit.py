"""A timm ViT with CricaVPR's multi-scale conv adapter (MulConvAdapter) in every block.

Shared by D2-VPR (ViT-S/14) and CricaVPR (ViT-B/14). The ViT keeps timm's key layout under
``vit.`` (so DINOv2 files load into it); adapters live in ``adapters.N``.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNReLU(nn.Sequential):
    """Conv2d + BatchNorm (eps 1e-3) + ReLU, the adapter's conv unit.

    No conv bias: BatchNorm cancels it, so it would never get a gradient (the released code
    has one: 216 dead parameters per ViT-S block, 432 per ViT-B block).
    """

    def __init__(self, cin: int, cout: int, k: int):
        super().__init__(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
                         nn.BatchNorm2d(cout, eps=1e-3), nn.ReLU())


class MulConvAdapter(nn.Module):
    """Multi-scale conv bottleneck adapter (CricaVPR): tokens (B, N, dim) -> (B, N, dim).

    Bottleneck b = dim/2; branches give b/2 (1x1), b/4 (1x1 to b/16, 3x3), b/4 (5x5).
    Prefix tokens (CLS) only take the residual path inside the bottleneck.
    """

    def __init__(self, dim: int, bottleneck: Optional[int] = None):
        super().__init__()
        b = int(bottleneck or dim // 2)
        c1, red = b // 2, max(1, b // 16)
        c3 = (b - c1) // 2
        c5 = b - c1 - c3
        self.fc1, self.fc2 = nn.Linear(dim, b), nn.Linear(b, dim)
        self.branch1 = ConvBNReLU(b, c1, 1)
        self.branch2 = nn.Sequential(ConvBNReLU(b, red, 1), ConvBNReLU(red, c3, 3))
        self.branch3 = nn.Sequential(ConvBNReLU(b, red, 1), ConvBNReLU(red, c5, 5))
        # Near-identity start, so an untrained adapter keeps a DINOv2 checkpoint's features
        # (the released code uses the default init); small rather than zero so that every
        # adapter weight gets a gradient from the first step.
        nn.init.normal_(self.fc2.weight, std=1e-3)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor, grid, prefix: int = 1) -> torch.Tensor:
        x0 = F.relu(self.fc1(x))
        bsz, _, b = x0.shape
        xs = x0[:, prefix:].transpose(1, 2).reshape(bsz, b, grid[0], grid[1])
        conv = torch.cat([self.branch1(xs), self.branch2(xs), self.branch3(xs)], dim=1)
        conv = conv.flatten(2).transpose(1, 2)
        return self.fc2(torch.cat([x0[:, :prefix], conv], dim=1) + x0)


class AdaptedViT(nn.Module):
    """A timm ViT whose blocks run with a MulConvAdapter on the MLP branch.

    The ViT keeps timm's key layout under ``vit.`` (so DINOv2 files load into it); adapters
    live in ``adapters.N``. ``forward`` returns the token sequences after the given blocks.
    """

    def __init__(self, vit: nn.Module, adapters: bool = True, adapter_scale: float = 0.2):
        super().__init__()
        self.vit = vit
        dim = vit.embed_dim
        self.adapters = nn.ModuleList(MulConvAdapter(dim) for _ in vit.blocks) if adapters \
            else None
        self.adapter_scale = adapter_scale

    @property
    def patch(self) -> int:
        return int(self.vit.patch_embed.patch_size[0])

    def forward(self, images: torch.Tensor, taps: Sequence[int]) -> List[torch.Tensor]:
        """Token outputs (B, prefix + h*w, C) of the 1-based blocks ``taps``."""
        vit, grid = self.vit, (images.shape[-2] // self.patch, images.shape[-1] // self.patch)
        prefix = vit.num_prefix_tokens
        x = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(images))))
        outs, last = [], max(taps)
        for i, blk in enumerate(vit.blocks[:last], start=1):
            x = x + blk.drop_path1(blk.ls1(blk.attn(blk.norm1(x))))
            h = blk.norm2(x)
            y = blk.mlp(h)
            if self.adapters is not None:
                y = y + self.adapter_scale * self.adapters[i - 1](h, grid, prefix)
            x = x + blk.drop_path2(blk.ls2(y))
            if i in taps:
                outs.append(x)
        return [outs[list(sorted(set(taps))).index(t)] for t in taps]
