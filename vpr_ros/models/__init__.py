"""Registered VPR models: ``create_model(name, pretrained=..., **kw)``."""
from vpr_ros.models.base import preprocess, VPRModel
from vpr_ros.models.registry import create_model, get_spec, list_models, ModelSpec, register_model

__all__ = ['create_model', 'get_spec', 'list_models', 'ModelSpec', 'preprocess',
           'register_model', 'VPRModel']
