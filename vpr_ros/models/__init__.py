"""Registered VPR models: ``create_model(name, pretrained=..., **kw)``.

Layout: ``backbones/`` (images -> features) and ``aggregators/`` (features -> descriptor) are
the parts, one file each; ``base.compose(backbone, aggregator, spec=..., dim=...)`` joins
them into a VPRModel. The model families below register their names when imported (timm
style): ``dinov2`` is the product of ViT sizes x aggregators from its AGGREGATORS table.
"""
from vpr_ros.models.base import compose, preprocess, VPRModel
from vpr_ros.models.registry import create_model, get_spec, list_models, ModelSpec, register_model
# the model families: importing them registers their models
from vpr_ros.models import cricavpr, d2vpr, dinov2  # noqa: F401,I100,E402
from vpr_ros.models import efficientnet_lite, packaged, timm_backbones  # noqa: F401,I100,E402

__all__ = ['compose', 'create_model', 'get_spec', 'list_models', 'ModelSpec', 'preprocess',
           'register_model', 'VPRModel']
