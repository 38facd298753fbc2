"""Where a model's weights came from: plain weight files, untrained parts, refusal of random ones.

* ``load_weights_file(name, path)``: ``name`` with the weights of ``path``, a plain state dict
  saved from that model (``torch.save(model.state_dict())`` or safetensors ``save_file``; no
  vpr_ros metadata needed), else a file the model's own factory reads (a paper's release, a
  DINOv2 backbone file: ``create_model(name, checkpoint=path)``).
* ``untrained_parts(net, loaded)``: the parts of ``net`` that hold random weights (the whole
  model when nothing was loaded; an aggregator a factory left random; a random projection).
* ``require_trained(net, allow, what)``: refuses to build ``what`` (a map, a training cache)
  from a model with untrained parts unless ``allow`` (a flag such as --allow-random-weights).
"""
from __future__ import annotations

from typing import List

import torch
from torch import nn

from vpr_ros.models.checkpoint_file import CheckpointError, state_mismatch

ALL_RANDOM = 'all weights (no pretrained weights, no checkpoint or weights file)'


class UntrainedWeightsError(ValueError):
    """A map or training cache would be built from randomly initialised weights."""


def load_weights_file(name: str, path: str, pretrained: bool = False, **kw):
    """Registered model ``name`` loaded from the weights file ``path`` (see module docstring).

    ``kw`` are create_model options (e.g. input_size). CheckpointError naming the expected keys
    when the file fits neither way.
    """
    from vpr_ros.models.dinov2_weights import resample_vit_pos_embeds
    from vpr_ros.models.registry import create_model
    from vpr_ros.models.releases import read_release
    state = read_release(path)  # wrappers opened, 'module.' removed; ValueError if no tensors
    net = create_model(name, pretrained=False, **kw)
    own = net.state_dict()
    resample_vit_pos_embeds(net, state, own)
    missing, unexpected, bad = state_mismatch(own, state)
    if not (missing or unexpected or bad):
        net.load_state_dict(state, strict=True)
        net.untrained_parts = []
        return net
    try:
        return create_model(name, pretrained=pretrained, checkpoint=path, **kw)
    except TypeError as e:  # the factory reads no weights files itself
        if 'checkpoint' not in str(e):
            raise
        keys = ', '.join(list(own)[:3])
        raise CheckpointError(
            f'{path!r} is neither a vpr_ros checkpoint nor a state dict of {name}: '
            f'{len(missing)} missing keys {missing[:3]}, {len(unexpected)} unexpected '
            f'{unexpected[:3]}, wrong shapes {bad[:3]}. Expected the keys of '
            f"create_model({name!r}).state_dict() ({keys}, ...), e.g. saved with "
            f'torch.save(model.state_dict(), PATH) or safetensors save_file') from None


def _is_identity(layer: nn.Linear) -> bool:
    w = layer.weight.detach()
    return (w.shape[0] == w.shape[1] and bool(torch.equal(w, torch.eye(w.shape[0], dtype=w.dtype)))
            and (layer.bias is None or not bool(layer.bias.detach().any())))


def untrained_parts(net, loaded: bool = True) -> List[str]:
    """Descriptions of the randomly initialised parts of ``net``; [] when all are trained.

    ``loaded=False``: no weights were loaded at all. Otherwise the parts a factory recorded as
    random (``net.random_parts``) and a linear projection that is neither loaded nor the
    identity (``net.untrained_parts`` set by a loader that filled every tensor wins)."""
    if not loaded:
        return [ALL_RANDOM]
    if getattr(net, 'untrained_parts', None) is not None:
        return list(net.untrained_parts)
    parts = list(getattr(net, 'random_parts', ()))
    proj = getattr(net, 'projection', None)
    if isinstance(proj, nn.Linear) and not _is_identity(proj):
        parts.append(f'projection {proj.in_features} -> {proj.out_features} (random linear '
                     f'layer: dim differs from the aggregator width)')
    return parts


def require_trained(net, allow: bool, what: str) -> None:
    """UntrainedWeightsError when ``net`` has untrained parts and ``allow`` is False."""
    parts = getattr(net, 'untrained_parts', None) or []
    if parts and not allow:
        raise UntrainedWeightsError(
            f'refusing to build {what} with {getattr(net, "name", type(net).__name__)}: '
            f'untrained (random) parts: {"; ".join(parts)}. Its descriptors would be '
            f'meaningless, and a random part differs between processes. Give the trained '
            f'weights (--checkpoint FILE), or pass --allow-random-weights (tests, speed '
            f'benchmarks)')
