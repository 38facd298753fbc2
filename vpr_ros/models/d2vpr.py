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

from typing import List, Sequence

import torch
from torch import nn

from vpr_ros.models.aggregators.base import TokenAggregator
from vpr_ros.models.aggregators.tdda import TDDA
from vpr_ros.models.backbones.adapted_vit import (  # noqa: F401 - part of this API
    AdaptedViT, ConvBNReLU, MulConvAdapter)
from vpr_ros.models.backbones.vit import (  # noqa: F401 - part of this API
    create_vit, PATCH, pick, round_to_patch, split_tokens, VIT_KEYS)
from vpr_ros.models.base import compose, VPRModel
from vpr_ros.models.spec import ModelSpec, register_model

TDDA_KEYS = TDDA.OPTIONS


def build_vit(timm_name: str, input_size, checkpoint: str = '', pos_embed_size: int = 0,
              sd=None, **vit_kw) -> nn.Module:
    """A timm DINOv2 ViT at ``input_size`` (random weights, or a DINOv2 ``checkpoint``; ``sd``:
    its tensors when already read); ``pos_embed_size``: see backbones.vit.create_vit."""
    vit = create_vit(timm_name, input_size, pos_embed_size, **vit_kw)
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


def default_taps(depth: int) -> List[int]:
    """Blocks 2, 4, 8, 12 of 12, scaled to ``depth`` (1-based)."""
    return [max(1, round(t * depth / 12)) for t in (2, 4, 8, 12)]


def build_d2vpr(spec: ModelSpec, pretrained: bool = False, dim=None, input_size=None,
                checkpoint: str = '', taps=None, drm_dim=None, adapters: bool = True,
                pos_embed_size: int = 0, **kw) -> VPRModel:
    """Factory of ``d2vpr_*`` (see the module docstring for the options)."""
    vit_kw, tdda_kw = pick(kw, VIT_KEYS), pick(kw, TDDA_KEYS)
    if kw:
        raise TypeError(f'{spec.name}: unknown options {sorted(kw)}')
    if pretrained and not checkpoint:
        raise ValueError(f'{spec.name}: pretrained=True needs checkpoint=PATH (DINOv2 ViT-S/14 '
                         f'weights file); there is no model hub offline')
    size = round_to_patch(input_size or spec.input_size)
    sd, layout = read_weights(spec.name, checkpoint, 'd2vpr')
    vit = build_vit('vit_small_patch14_dinov2', size, checkpoint if layout == 'dinov2' else '',
                    pos_embed_size, sd, **vit_kw)
    drm_dim = int(drm_dim or 2 * vit.embed_dim)
    backbone = D2VPRBackbone(vit, taps or default_taps(len(vit.blocks)), drm_dim, adapters)
    agg = TokenAggregator(TDDA(drm_dim, **tdda_kw))
    model = compose(backbone, agg, spec=spec, dim=dim, input_size=size)
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
