"""The vpr_ros checkpoint file format: read a checkpoint's weights and metadata.

``.safetensors`` files keep the JSON in the header metadata (key 'vpr_ros'); any other
extension is a torch.save of ``{'state_dict': plain tensors, 'vpr_ros_meta': json string}``.
Writing and rebuilding the model are in vpr_ros.models.checkpoint (which re-exports these).
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Tuple

import torch

FORMAT = 'vpr_ros.checkpoint/1'
META_KEY = 'vpr_ros'


class CheckpointError(ValueError):
    """A file is not a readable vpr_ros checkpoint or does not fit its own model."""


def read_checkpoint(path: str) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """(state dict, metadata) of a vpr_ros checkpoint; CheckpointError when it is not one."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist')
    try:
        if path.endswith('.safetensors'):
            from safetensors import safe_open
            from safetensors.torch import load_file
            with safe_open(path, framework='pt') as f:
                text = (f.metadata() or {}).get(META_KEY)
            state = load_file(path, device='cpu')
        else:
            blob = torch.load(path, map_location='cpu', weights_only=True)
            text = blob.get('vpr_ros_meta') if isinstance(blob, dict) else None
            state = blob.get('state_dict') if text else None
    except Exception as e:  # noqa: BLE001 - report any reader failure the same clear way
        raise CheckpointError(f'{path!r} cannot be read as a checkpoint (corrupt or truncated '
                              f'file?): {e}') from e
    if not text:
        raise CheckpointError(f'{path!r} has no vpr_ros metadata: it is not a checkpoint '
                              f'written by save_checkpoint (backbone weights such as DINOv2 '
                              f'files go to create_model(name, checkpoint=PATH) instead)')
    try:
        meta = json.loads(text)
    except ValueError as e:
        raise CheckpointError(f'{path!r}: metadata is not valid JSON: {e}') from e
    if meta.get('format') != FORMAT:
        raise CheckpointError(f'{path!r}: unsupported checkpoint format {meta.get("format")!r} '
                              f'(this version reads {FORMAT})')
    return state, meta


def is_checkpoint(path: str) -> bool:
    """True when ``path`` is a readable vpr_ros checkpoint."""
    try:
        read_checkpoint(path)
    except (CheckpointError, FileNotFoundError):
        return False
    return True


def state_mismatch(own: Dict[str, torch.Tensor], state: Dict[str, torch.Tensor]):
    """(missing keys, unexpected keys, 'key (file shape) vs (model shape)' of wrong shapes)
    of loading ``state`` into a model whose state dict is ``own``; all empty when it fits."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(k.lstrip('?') for k in set(state) - set(own))
    bad = [f'{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}'
           for k in own if k in state and state[k].shape != own[k].shape]
    return missing, unexpected, bad
