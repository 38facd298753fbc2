"""Query models built from any timm backbone: features -> GeM -> projection."""
from __future__ import annotations

import timm
from torch import nn

from vpr_ros.models.aggregators import GeM
from vpr_ros.models.base import VPRModel
from vpr_ros.models.spec import ModelSpec, register_model


class TimmFeatureMap(nn.Module):
    """The last feature map (B,C,H,W) of a timm model (classifier and pooling removed)."""

    def __init__(self, timm_name: str, pretrained: bool = False):
        super().__init__()
        # forward_features never applies the head, so the pooling can stay (some timm models,
        # e.g. efficientvit_b2, refuse global_pool='').
        self.net = timm.create_model(timm_name, pretrained=pretrained, num_classes=0)
        self.out_channels = self.net.num_features

    def forward(self, x):
        return self.net.forward_features(x)


def build_timm_gem(spec: ModelSpec, pretrained: bool = False, timm_name: str = '',
                   dim=None, input_size=None, **kw):
    """Any timm backbone with GeM pooling and a projection to ``dim`` (default spec.dim).

    ``input_size`` (int or (h, w)) overrides the spec's resolution.
    """
    if kw:
        raise TypeError(f'{spec.name}: unknown options {sorted(kw)}; known: dim, input_size, '
                        f'timm_name')
    backbone = TimmFeatureMap(timm_name or spec.name.split(':', 1)[-1], pretrained=pretrained)
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    return VPRModel(spec, backbone, GeM(), backbone.out_channels, dim, input_size=input_size,
                    projection=spec.role == 'query')


def _register_timm_query(name: str, timm_name: str, size=(224, 224), dim=512):
    spec = ModelSpec(name=name, role='query', input_size=size, dim=dim,
                     weights='timm (random init offline; pretrained=True needs the hub)',
                     description=f'timm {timm_name} + GeM + linear projection')

    @register_model(spec)
    def _factory(spec, pretrained=False, **kw):
        kw.setdefault('timm_name', timm_name)
        return build_timm_gem(spec, pretrained=pretrained, **kw)


# (registered name, timm name, timm's native input size)
for _n, _t, _s in [('mobilenetv3_small', 'mobilenetv3_small_100', 224),
                   ('mobilenetv3_large', 'mobilenetv3_large_100', 224),
                   ('mobilenetv4_conv_small', 'mobilenetv4_conv_small', 224),
                   ('mobilenetv4_conv_medium', 'mobilenetv4_conv_medium', 256),
                   ('resnet18_gem', 'resnet18', 224),
                   ('efficientvit_b2', 'efficientvit_b2', 224),
                   ('mobilevitv2_100', 'mobilevitv2_100', 256)]:
    _register_timm_query(_n, _t, size=(_s, _s))
