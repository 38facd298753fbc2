"""DINOv2 timm ViT backbone: images -> (patch map (B,C,h,w), CLS token (B,C))."""
from __future__ import annotations

import torch
from torch import nn

from vpr_ros.models.backbones.vit import create_vit, split_tokens

# size letter -> (timm size name, embedding width)
SIZES = {'s': ('small', 384), 'b': ('base', 768), 'l': ('large', 1024), 'g': ('giant', 1536)}


def timm_name(size: str, registers: bool) -> str:
    """timm's name of the DINOv2 ViT of ``size`` ('s', 'b', 'l', 'g')."""
    return f'vit_{SIZES[size][0]}_patch14{"_reg4" if registers else ""}_dinov2'


class DINOv2Backbone(nn.Module):
    """timm DINOv2 ViT -> ``(patch map (B,C,h,w), cls token (B,C))``, after the final norm
    unless ``final_norm=False`` (BoQ's released model reads the tokens before it)."""

    def __init__(self, timm_name: str, input_size, freeze_blocks: int = 0,
                 final_norm: bool = True, **vit_kw):
        super().__init__()
        self.vit = create_vit(timm_name, input_size, **vit_kw)
        self.out_channels = self.vit.num_features
        self.final_norm = bool(final_norm)
        self.freeze(freeze_blocks)

    def freeze(self, n: int) -> None:
        """Freeze the embeddings and the first ``n`` transformer blocks (n=0: nothing)."""
        depth = len(self.vit.blocks)
        if not 0 <= n <= depth:
            raise ValueError(f'freeze_blocks must be between 0 and the depth {depth}, got {n}')
        if n == 0:
            return
        frozen = [self.vit.patch_embed, *self.vit.blocks[:n]]
        params = [p for m in frozen for p in m.parameters()]
        params += [p for p in (self.vit.cls_token, self.vit.pos_embed,
                               getattr(self.vit, 'reg_token', None)) if p is not None]
        for p in params:
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor):
        vit = self.vit
        if self.final_norm:
            tokens = vit.forward_features(x)
        else:
            tokens = vit.blocks(vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(x)))))
        patch = int(vit.patch_embed.patch_size[0])
        grid = (x.shape[-2] // patch, x.shape[-1] // patch)
        return split_tokens(tokens, vit.num_prefix_tokens, grid)
