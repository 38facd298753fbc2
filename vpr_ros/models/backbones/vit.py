"""Shared ViT helpers: patch rounding, timm ViT creation, token splitting, pos-embed resampling.

Used by every ViT-based model (DINOv2 x aggregator family, D2-VPR, CricaVPR) and by the
DINOv2 weight loaders (dinov2_weights.py).
"""
from __future__ import annotations

import math

import timm
import torch
import torch.nn.functional as F
from torch import nn

PATCH = 14  # DINOv2's patch size
# timm ViT architecture overrides accepted by the ViT-based factories (tests use tiny ViTs)
VIT_KEYS = ('embed_dim', 'depth', 'num_heads', 'mlp_ratio', 'init_values')


def pick(kw: dict, keys) -> dict:
    """Pop ``keys`` present in ``kw`` into a new dict."""
    return {k: kw.pop(k) for k in keys if k in kw}


def round_to_patch(size, patch: int = PATCH):
    """int or (h, w) -> (h, w), each rounded to the nearest multiple of ``patch`` (>= patch)."""
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    return tuple(max(patch, int(round(int(v) / patch)) * patch) for v in (h, w))


def create_vit(timm_name: str, input_size, pos_embed_size: int = 0, **vit_kw) -> nn.Module:
    """A timm ViT (random weights, no head) at ``input_size`` (h, w).

    ``pos_embed_size`` > 0 keeps a position table for that image side (518: DINOv2's own
    37x37 table) and resamples it every forward, as the released D2-VPR/CricaVPR code does.
    """
    if pos_embed_size:
        return timm.create_model(timm_name, pretrained=False, num_classes=0,
                                 img_size=pos_embed_size, dynamic_img_size=True, **vit_kw)
    return timm.create_model(timm_name, pretrained=False, num_classes=0,
                             img_size=tuple(input_size), **vit_kw)


def split_tokens(tokens: torch.Tensor, prefix: int, grid):
    """(B, prefix + h*w, C) -> (patch map (B, C, h, w), CLS (B, C))."""
    patches = tokens[:, prefix:]
    return patches.transpose(1, 2).reshape(tokens.shape[0], -1, grid[0], grid[1]), tokens[:, 0]


def resample_pos_embed(pos: torch.Tensor, vit: nn.Module) -> torch.Tensor:
    """Resample a square-grid position embedding to ``vit``'s patch grid, as the official
    DINOv2 forward does for that input size (so a file gives the official tokens).

    Plain models: bicubic with scale factor (n + 0.1) / side and no antialias (the official
    ``interpolate_offset=0.1``); register models: bicubic to the size, antialiased (their
    official ``interpolate_offset=0``, ``interpolate_antialias=True``). Computed in float32.
    """
    prefix = 0 if getattr(vit, 'no_embed_class', False) else vit.num_prefix_tokens
    n = pos.shape[1] - prefix
    side = int(round(math.sqrt(n)))
    if side * side != n:
        raise ValueError(f'pos_embed has {n} patch positions, not a square grid')
    rows, cols = (int(v) for v in vit.patch_embed.grid_size)
    grid = pos[:, prefix:].float().reshape(1, side, side, -1).permute(0, 3, 1, 2)
    if getattr(vit, 'reg_token', None) is not None:
        grid = F.interpolate(grid, size=(rows, cols), mode='bicubic', antialias=True)
    else:
        scale = ((rows + 0.1) / side, (cols + 0.1) / side)
        grid = F.interpolate(grid, scale_factor=scale, mode='bicubic', antialias=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, rows * cols, -1).to(pos.dtype)
    return torch.cat([pos[:, :prefix], grid], dim=1)
