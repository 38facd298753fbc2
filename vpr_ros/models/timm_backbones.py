"""Query models built from any timm backbone: features -> GeM -> projection."""
from __future__ import annotations

import timm
from torch import nn

from vpr_ros.models.aggregators import GeM
from vpr_ros.models.base import VPRModel
from vpr_ros.models.registry import ModelSpec, register_model


class TimmFeatureMap(nn.Module):
    """The last feature map (B,C,H,W) of a timm model (classifier and pooling removed)."""

    def __init__(self, timm_name: str, pretrained: bool = False):
        super().__init__()
        self.net = timm.create_model(timm_name, pretrained=pretrained, num_classes=0,
                                     global_pool='')
        self.out_channels = self.net.num_features

    def forward(self, x):
        return self.net.forward_features(x)


def build_timm_gem(spec: ModelSpec, pretrained: bool = False, timm_name: str = '',
                   dim=None, **_):
    """Any timm backbone with GeM pooling and a projection to ``dim`` (default spec.dim)."""
    backbone = TimmFeatureMap(timm_name or spec.name.split(':', 1)[-1], pretrained=pretrained)
    return VPRModel(spec, backbone, GeM(), backbone.out_channels, dim)


def _register_timm_query(name: str, timm_name: str, size=(224, 224), dim=512):
    spec = ModelSpec(name=name, role='query', input_size=size, dim=dim,
                     weights='timm (random init offline; pretrained=True needs the hub)',
                     description=f'timm {timm_name} + GeM + linear projection')

    @register_model(spec)
    def _factory(spec, pretrained=False, **kw):
        kw.setdefault('timm_name', timm_name)
        return build_timm_gem(spec, pretrained=pretrained, **kw)


for _n, _t in [('mobilenetv3_small', 'mobilenetv3_small_100'),
               ('mobilenetv3_large', 'mobilenetv3_large_100'),
               ('mobilenetv4_conv_small', 'mobilenetv4_conv_small'),
               ('resnet18_gem', 'resnet18'),
               ('efficientvit_b2', 'efficientvit_b2'),
               ('mobilevitv2_100', 'mobilevitv2_100')]:
    _register_timm_query(_n, _t)
