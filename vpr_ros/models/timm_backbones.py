"""Query models built from any timm backbone: features -> GeM -> projection.

TimmFeatureMap lives in vpr_ros.models.backbones.timm_cnn (re-exported here)."""
from __future__ import annotations

from vpr_ros.models.aggregators.gem import GeM
from vpr_ros.models.backbones.timm_cnn import TimmFeatureMap
from vpr_ros.models.base import compose
from vpr_ros.models.spec import ModelSpec, register_model


__all__ = ['build_timm_gem', 'TimmFeatureMap']


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
    return compose(backbone, GeM(in_dim=backbone.out_channels), spec=spec, dim=dim or spec.dim,
                   input_size=input_size, projection=spec.role == 'query')


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
