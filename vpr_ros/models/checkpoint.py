"""vpr_ros checkpoints: weights + a JSON config that rebuilds the model through create_model.

``.safetensors`` files keep the JSON in the header metadata (key 'vpr_ros'); any other
extension is a torch.save of ``{'state_dict': plain tensors, 'vpr_ros_meta': json string}``,
readable with ``torch.load(weights_only=True)``. A query network trained against a map records
``compatible_with = {'encoder': gallery model name, 'dim': gallery dim, 'weights_fingerprint':
sha256 of the gallery's weights}`` (``gallery_compat``).
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional

import torch

from vpr_ros.models.checkpoint_file import (  # noqa: F401 - part of this API
    CheckpointError, FORMAT, is_checkpoint, META_KEY, read_checkpoint, state_mismatch)
from vpr_ros.models.dinov2_weights import resample_vit_pos_embeds
from vpr_ros.models.registry import create_model
# Weight sources are not part of the architecture: the checkpoint holds all weights.
_NOT_ARCH = ('pretrained', 'checkpoint', 'allow_random_aggregator')


def model_meta(model, compatible_with: Optional[dict] = None) -> Dict[str, Any]:
    """The JSON-serialisable description of ``model`` (a VPRModel made by create_model)."""
    kwargs = {k: v for k, v in getattr(model, 'create_kwargs', {}).items()
              if k not in _NOT_ARCH}
    kwargs['input_size'] = list(model.input_size)
    lookups = {m.offset_lookup for m in model.modules() if hasattr(m, 'offset_lookup')}
    if len(lookups) == 1:  # TDDA: recorded, so a later change of its default changes nothing
        kwargs['offset_lookup'] = lookups.pop()
    if kwargs.get('dim') is None:
        kwargs['dim'] = int(model.dim)
    if compatible_with is not None:
        allowed = {'encoder', 'dim', 'weights_fingerprint'}
        if not {'encoder', 'dim'} <= set(compatible_with) <= allowed:
            raise ValueError("compatible_with must be {'encoder': gallery model name, "
                             "'dim': gallery dim, optionally 'weights_fingerprint': of the "
                             f"gallery's weights}}, got {compatible_with}")
        fp = str(compatible_with.get('weights_fingerprint') or '')
        compatible_with = {'encoder': str(compatible_with['encoder']),
                           'dim': int(compatible_with['dim']),
                           **({'weights_fingerprint': fp} if fp else {})}
    return {'format': FORMAT, 'name': model.name, 'create_kwargs': kwargs,
            'dim': int(model.dim), 'input_size': list(model.input_size),
            'mean': list(model.mean), 'std': list(model.std),
            'compatible_with': compatible_with}


def save_checkpoint(path: str, model, extra: Optional[dict] = None) -> Dict[str, Any]:
    """Write ``model``'s weights and config to ``path``; returns the metadata written.

    ``extra`` may hold 'compatible_with' and any JSON-serialisable training information.
    """
    extra = dict(extra or {})
    meta = model_meta(model, extra.pop('compatible_with', None))
    meta['extra'] = extra
    try:
        text = json.dumps(meta)
    except TypeError as e:
        raise ValueError(f'checkpoint metadata must be JSON-serialisable (create kwargs and '
                         f'extra): {e}') from e
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if path.endswith('.safetensors'):
        from safetensors.torch import save_file
        save_file(state, path, metadata={META_KEY: text})
    else:
        torch.save({'state_dict': state, 'vpr_ros_meta': text}, path)
    return meta


def load_checkpoint(path: str, input_size=None):
    """Rebuild the model of a checkpoint and load its weights -> (model in eval mode, meta).

    ``input_size`` overrides the stored size (ViT position embeddings are resampled).
    """
    state, meta = read_checkpoint(path)
    kwargs = dict(meta['create_kwargs'])
    if str(meta['name']).startswith('d2vpr') and 'offset_lookup' not in kwargs:
        # saved before offset_lookup was recorded: trained with the then default, 'roi'
        kwargs['offset_lookup'] = 'roi'
    if input_size is not None:
        kwargs['input_size'] = input_size
    try:
        model = create_model(meta['name'], pretrained=False, **kwargs)
    except KeyError as e:
        raise CheckpointError(f'{path!r} needs model {meta["name"]!r}: {e}') from e
    own = model.state_dict()
    resample_vit_pos_embeds(model, state, own)
    missing, unexpected, bad = state_mismatch(own, state)
    if missing or unexpected or bad:
        raise CheckpointError(
            f'{path!r} does not fit model {meta["name"]!r} {kwargs}: missing {missing[:4]}, '
            f'unexpected {unexpected[:4]}, wrong shapes {bad[:4]} (corrupt file, or an input '
            f'size this architecture cannot change?)')
    model.load_state_dict(state, strict=True)
    if int(model.dim) != int(meta['dim']):
        raise CheckpointError(f'{path!r}: rebuilt model is {model.dim}-d, file says {meta["dim"]}')
    return model.eval(), meta


def gallery_compat(gallery) -> Dict[str, Any]:
    """``compatible_with`` for a query network trained against the model ``gallery``: its
    name, width and weights fingerprint (maps are matched by the fingerprint)."""
    return {'encoder': gallery.name, 'dim': int(gallery.dim),
            'weights_fingerprint': weights_fingerprint(gallery)}


def weights_fingerprint(model) -> str:
    """sha256 (hex) of ``model``'s state dict: every tensor's name, dtype, shape and bytes, in
    sorted name order, so the same weights give the same fingerprint in every process."""
    import hashlib
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f'{name}|{t.dtype}|{tuple(t.shape)}|'.encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b'')
    return h.hexdigest()
