"""D2-VPR student (arXiv 2511.12528): DINOv2 ViT-S/14 + adapters + DRM + TDDA.

* Adapters: CricaVPR's MulConvAdapter in every block (fc down to dim/2, ReLU, parallel
  1x1 / 1x1-3x3 / 1x1-5x5 conv branches with BatchNorm on the patch grid, residual, fc up),
  added to the MLP branch as ``ls2(mlp(h) + 0.2 * adapter(h))`` with h = norm2(x). At ViT-S
  that is 191,088 parameters per block (the released D2-VPR widths 384/192/96/12/48/12/48,
  without the 216 conv biases that BatchNorm cancels).
* DRM (Distillation Recovery Module): the token outputs of blocks 2, 4, 8, 12 (1-based,
  before any norm) concatenated (4 x 384 = 1536) -> Linear(1536, 768) -> LayerNorm. The ViT's
  own final norm is not used (removed after loading weights).
* TDDA aggregator (vpr_ros.models.tdda): 14 x 768 = 10752-d descriptor.

Registered: ``d2vpr_vits14`` (role query, 224x224, 10752-d). ``create_model`` options:
``dim`` (linear projection, e.g. to a gallery model's width), ``input_size``, ``checkpoint``
(DINOv2 ViT-S/14 weights in official/timm/transformers layout, or the D2-VPR release
``{'model_state_dict': ...}``: every tensor mapped, see releases.py), ``repeat_offsets``,
``offset_lookup``,
``cross_image`` (TDDA options), ``taps`` (1-based blocks for the DRM), ``drm_dim``,
``adapters`` (False: plain ViT), ``pos_embed_size`` (518: the released/paper position table
37x37, resampled each forward) and ViT overrides for tests (embed_dim, depth, num_heads,
mlp_ratio, init_values).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import timm
import torch
import torch.nn.functional as F
from torch import nn

from vpr_ros.models.base import VPRModel
from vpr_ros.models.spec import ModelSpec, register_model
from vpr_ros.models.tdda import TDDA

PATCH = 14
VIT_KEYS = ('embed_dim', 'depth', 'num_heads', 'mlp_ratio', 'init_values')
TDDA_KEYS = ('repeat_offsets', 'offset_lookup', 'cross_image', 'offset_hidden',
             'fusion_hidden', 'pos_hidden')


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


def build_vit(timm_name: str, input_size, checkpoint: str = '', pos_embed_size: int = 0,
              sd=None, **vit_kw) -> nn.Module:
    """A timm DINOv2 ViT at ``input_size`` (random weights, or a DINOv2 ``checkpoint``; ``sd``:
    its tensors when already read).

    ``pos_embed_size`` > 0 keeps a position table for that image side (518: DINOv2's own
    37x37 table) and resamples it every forward, as the released D2-VPR/CricaVPR code does.
    """
    if pos_embed_size:
        vit = timm.create_model(timm_name, pretrained=False, num_classes=0,
                                img_size=pos_embed_size, dynamic_img_size=True, **vit_kw)
    else:
        vit = timm.create_model(timm_name, pretrained=False, num_classes=0,
                                img_size=tuple(input_size), **vit_kw)
    if checkpoint:
        from vpr_ros.models.dinov2_weights import load_vit_weights
        load_vit_weights(vit, checkpoint, sd)
    return vit


def read_weights(name: str, checkpoint: str, release: str):
    """(tensors, layout) of ``checkpoint`` for model ``name``: a DINOv2 backbone file or the
    paper's ``release`` layout (releases.py); (None, None) without a file."""
    if not checkpoint:
        return None, None
    from vpr_ros.models.releases import detect_layout, read_release, require_layout
    sd = read_release(checkpoint)
    layout = detect_layout(sd)
    require_layout(layout, ('dinov2', release), name, checkpoint)
    return sd, layout


def split_tokens(tokens: torch.Tensor, prefix: int, grid):
    """(B, prefix + h*w, C) -> (patch map (B, C, h, w), CLS (B, C))."""
    patches = tokens[:, prefix:]
    return patches.transpose(1, 2).reshape(tokens.shape[0], -1, grid[0], grid[1]), tokens[:, 0]


class D2VPRBackbone(nn.Module):
    """Adapted ViT-S + DRM: images -> (patch map (B, drm_dim, h, w), CLS (B, drm_dim))."""

    def __init__(self, vit: nn.Module, taps: Sequence[int] = (2, 4, 8, 12),
                 drm_dim: int = 768, adapters: bool = True):
        super().__init__()
        vit.norm = nn.Identity()  # the DRM LayerNorm replaces it
        self.encoder = AdaptedViT(vit, adapters=adapters)
        self.taps = tuple(int(t) for t in taps)
        self.drm = nn.Sequential(nn.Linear(len(self.taps) * vit.embed_dim, drm_dim),
                                 nn.LayerNorm(drm_dim, eps=1e-6))
        self.out_channels = drm_dim

    def forward(self, images: torch.Tensor):
        p = self.encoder.patch
        grid = (images.shape[-2] // p, images.shape[-1] // p)
        tokens = self.drm(torch.cat(self.encoder(images, self.taps), dim=-1))
        return split_tokens(tokens, self.encoder.vit.num_prefix_tokens, grid)


class TokenAggregator(nn.Module):
    """Adapts a backbone's (patch map, CLS) output to an aggregator taking (CLS, map)."""

    def __init__(self, agg: nn.Module):
        super().__init__()
        self.agg = agg

    def forward(self, feats):
        fmap, cls = feats
        return self.agg((cls, fmap))


def default_taps(depth: int) -> List[int]:
    """Blocks 2, 4, 8, 12 of 12, scaled to ``depth`` (1-based)."""
    return [max(1, round(t * depth / 12)) for t in (2, 4, 8, 12)]


def _pick(kw: dict, keys) -> dict:
    return {k: kw.pop(k) for k in keys if k in kw}


def _size(input_size, spec: ModelSpec):
    s = input_size or spec.input_size
    h, w = (s, s) if isinstance(s, int) else tuple(s)
    return (max(PATCH, round(int(h) / PATCH) * PATCH), max(PATCH, round(int(w) / PATCH) * PATCH))


def build_d2vpr(spec: ModelSpec, pretrained: bool = False, dim=None, input_size=None,
                checkpoint: str = '', taps=None, drm_dim=None, adapters: bool = True,
                pos_embed_size: int = 0, **kw) -> VPRModel:
    """Factory of ``d2vpr_*`` (see the module docstring for the options)."""
    vit_kw, tdda_kw = _pick(kw, VIT_KEYS), _pick(kw, TDDA_KEYS)
    if kw:
        raise TypeError(f'{spec.name}: unknown options {sorted(kw)}')
    if pretrained and not checkpoint:
        raise ValueError(f'{spec.name}: pretrained=True needs checkpoint=PATH (DINOv2 ViT-S/14 '
                         f'weights file); there is no model hub offline')
    size = _size(input_size, spec)
    sd, layout = read_weights(spec.name, checkpoint, 'd2vpr')
    vit = build_vit('vit_small_patch14_dinov2', size, checkpoint if layout == 'dinov2' else '',
                    pos_embed_size, sd, **vit_kw)
    drm_dim = int(drm_dim or 2 * vit.embed_dim)
    backbone = D2VPRBackbone(vit, taps or default_taps(len(vit.blocks)), drm_dim, adapters)
    agg = TokenAggregator(TDDA(drm_dim, **tdda_kw))
    model = VPRModel(spec, backbone, agg, 14 * drm_dim, dim or 14 * drm_dim, input_size=size)
    if layout == 'd2vpr':
        from vpr_ros.models.releases import load_release
        load_release(model, sd, layout, checkpoint)
    return model


D2VPR_SPEC = ModelSpec(
    name='d2vpr_vits14', role='query', input_size=(224, 224), dim=14 * 768,
    weights='DINOv2 ViT-S/14 file (checkpoint=...) + D2-VPR training (vpr-ros train distill)',
    description='D2-VPR: DINOv2 ViT-S/14 + MulConv adapters + DRM + TDDA (14x768)')


@register_model(D2VPR_SPEC)
def _d2vpr_vits14(spec, pretrained=False, **kw):
    return build_d2vpr(spec, pretrained=pretrained, **kw)


def stage2_parameters(model: VPRModel, last_blocks: int = 4) -> List[nn.Parameter]:
    """D2-VPR's fine-tuning set: the last ``last_blocks`` blocks (+ their adapters), the DRM,
    the aggregator and the projection (blocks 8-11 of 12 by default)."""
    enc = model.backbone.encoder
    n = len(enc.vit.blocks)
    mods = list(enc.vit.blocks[n - last_blocks:])
    if enc.adapters is not None:
        mods += list(enc.adapters[n - last_blocks:])
    mods += [model.backbone.drm, model.aggregator, model.projection]
    return [p for m in mods for p in m.parameters()]
