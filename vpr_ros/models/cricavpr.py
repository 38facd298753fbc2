"""CricaVPR-style teacher (Lu et al., CVPR'24): DINOv2 ViT-B/14 + adapters + 14 region tokens.

The backbone is DINOv2 ViT-B/14 with a MulConvAdapter in every block (widths 768/384/192/24/
96/24/96 as released; vpr_ros.models.d2vpr.MulConvAdapter). After the final norm the patch
map is pooled into 14 tokens: the CLS token (CricaVPR's global token; ``global_token='gem'``
uses GeM over the whole map instead), the 2x2 grid and the 3x3 grid (patch splits [0, 8, 16]
and [0, 5, 11, 16] on a 16x16 map), each region L2-normalised per patch then GeM (p=3,
learnable, shared). Tokens are flattened and L2-normalised: 14 x 768 = 10752-d.

The cross-image encoder (2 transformer layers attending across the images of a batch) is OFF
by default, except when loading the CricaVPR release (``CricaVPR.pth``, which holds it and
whose official descriptors pass through it; ``cross_image=False`` refuses that file). With it
a descriptor depends on the other images in its batch, which a map built image by image and a
robot encoding one frame at a time cannot reproduce. The paper's
106.76M parameters include it (``cross_image=True``, 11.03M) and the 37x37 position table
(``pos_embed_size=518``); the adapters here have no conv biases before BatchNorm (-5,184;
a release's biases are folded into the BatchNorm running means, exact in eval mode).

Registered: ``cricavpr_vitb14`` (role gallery, 224x224, 10752-d). Options: ``dim``,
``input_size``, ``checkpoint`` (DINOv2 ViT-B/14 weights, or the CricaVPR release: see
releases.py), ``cross_image``, ``allow_random_aggregator`` (backbone-only file with
``cross_image=True``), ``global_token``,
``adapters``, ``pos_embed_size`` and ViT overrides for tests (embed_dim, depth, num_heads, ...).
"""
from __future__ import annotations

import torch
from torch import nn

from vpr_ros.models.aggregators.region_gem import RegionGeM
from vpr_ros.models.aggregators.tdda import cross_image_encoder, region_bounds  # noqa: F401
from vpr_ros.models.backbones.adapted_vit import AdaptedViT
from vpr_ros.models.backbones.vit import pick, round_to_patch, split_tokens, VIT_KEYS
from vpr_ros.models.base import compose, VPRModel
from vpr_ros.models.d2vpr import build_vit, read_weights
from vpr_ros.models.spec import ModelSpec, register_model

__all__ = ['build_cricavpr', 'CricaBackbone', 'CRICA_SPEC', 'RegionGeM']


class CricaBackbone(nn.Module):
    """Adapted ViT + final norm: images -> (patch map (B, C, h, w), CLS (B, C))."""

    def __init__(self, vit: nn.Module, adapters: bool = True):
        super().__init__()
        self.encoder = AdaptedViT(vit, adapters=adapters)
        self.out_channels = vit.embed_dim

    def forward(self, images: torch.Tensor):
        p, vit = self.encoder.patch, self.encoder.vit
        grid = (images.shape[-2] // p, images.shape[-1] // p)
        tokens = vit.norm(self.encoder(images, [len(vit.blocks)])[0])
        return split_tokens(tokens, vit.num_prefix_tokens, grid)


def build_cricavpr(spec: ModelSpec, pretrained: bool = False, dim=None, input_size=None,
                   checkpoint: str = '', cross_image=None, global_token: str = 'cls',
                   adapters: bool = True, pos_embed_size: int = 0,
                   allow_random_aggregator: bool = False, **kw) -> VPRModel:
    """Factory of ``cricavpr_vitb14`` (see the module docstring for the options)."""
    vit_kw = pick(kw, VIT_KEYS)
    if kw:
        raise TypeError(f'{spec.name}: unknown options {sorted(kw)}')
    if pretrained and not checkpoint:
        raise ValueError(f'{spec.name}: pretrained=True needs checkpoint=PATH (DINOv2 ViT-B/14 '
                         f'weights file); there is no model hub offline')
    size = round_to_patch(input_size or spec.input_size)
    sd, layout = read_weights(spec.name, checkpoint, 'cricavpr')
    if cross_image is None:  # the release holds (and its descriptors need) the encoder
        cross_image = layout == 'cricavpr'
    if layout == 'dinov2' and cross_image and not allow_random_aggregator:
        from vpr_ros.models.releases import random_aggregator_message, RandomAggregatorError
        raise RandomAggregatorError(random_aggregator_message(spec.name, checkpoint))
    vit = build_vit('vit_base_patch14_dinov2', size, checkpoint if layout == 'dinov2' else '',
                    pos_embed_size, sd, **vit_kw)
    backbone = CricaBackbone(vit, adapters)
    c = backbone.out_channels
    agg = RegionGeM(c, global_token, bool(cross_image))
    model = compose(backbone, agg, spec=spec, dim=dim, input_size=size)
    model.implied_kwargs = {'cross_image': bool(cross_image)}
    if layout == 'cricavpr':
        from vpr_ros.models.releases import load_release
        load_release(model, sd, layout, checkpoint)
    elif cross_image:
        model.random_parts = ['cross-image encoder (random, allow_random_aggregator)']
    return model


CRICA_SPEC = ModelSpec(
    name='cricavpr_vitb14', role='gallery', input_size=(224, 224), dim=14 * 768,
    weights='DINOv2 ViT-B/14 file (checkpoint=...); CricaVPR training not reproduced here',
    description='CricaVPR-style: DINOv2 ViT-B/14 + MulConv adapters + 14 region GeM tokens')


@register_model(CRICA_SPEC)
def _cricavpr_vitb14(spec, pretrained=False, **kw):
    return build_cricavpr(spec, pretrained=pretrained, **kw)
