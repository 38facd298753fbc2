"""Model registry in the style of timm: one place to add a model.

Each model registers a factory together with its defaults (input size, normalisation,
descriptor width, weight source). ``create_model(name, pretrained=..., **kw)`` builds it.
The built-in models are registered by the package's ``__init__`` (vpr_ros.models), which
Python runs before this module is used.
"""
from __future__ import annotations

from typing import List, Optional

from vpr_ros.models.spec import (  # noqa: F401 - part of this API
    _REGISTRY, IMAGENET_MEAN, IMAGENET_STD, ModelSpec, register_model)


def list_models(role: Optional[str] = None) -> List[str]:
    """Names of the registered models, optionally only those usable in ``role``."""
    return sorted(n for n, (s, _) in _REGISTRY.items()
                  if role is None or s.role in (role, 'both'))


def get_spec(name: str) -> ModelSpec:
    """The registered defaults of ``name``; KeyError with the known names otherwise."""
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
