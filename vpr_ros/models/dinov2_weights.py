"""DINOv2 weight files: official facebookresearch/dinov2, timm or transformers layout -> timm ViT.

Official .pth keys (cls_token, pos_embed, register_tokens, mask_token, blocks.N.ls1.gamma,
blocks.N.mlp.w12/w3 for the SwiGLU giant) are converted the way timm's own
``checkpoint_filter_fn`` does: mask_token dropped; for register models the CLS position
embedding is folded into cls_token (timm's no_embed_class layout); w12 -> fc1, w3 -> fc2.
The position embedding is resampled to the model's patch grid the way the official forward
interpolates it (``resample_pos_embed``). transformers keys: see hf_dinov2.py.
"""
from __future__ import annotations

import os
from typing import Dict, Optional

import torch
from torch import nn

from vpr_ros.models.backbones.vit import resample_pos_embed
from vpr_ros.models.hf_dinov2 import hf_to_official, is_hf_layout

OFFICIAL_URL = ('https://dl.fbaipublicfiles.com/dinov2/dinov2_vit{size}14/'
                'dinov2_vit{size}14{reg}_pretrain.pth')


def official_url(size: str, registers: bool) -> str:
    """URL of the official DINOv2 backbone weights, e.g. size 'b', registers False."""
    return OFFICIAL_URL.format(size=size, reg='_reg4' if registers else '')


def read_state_dict(path: str, strip: bool = True) -> Dict[str, torch.Tensor]:
    """Tensors of a .safetensors or torch (.pth/.pt/.bin) file, loaded without unpickling code.

    Wrappers ('model', 'state_dict' of Lightning, 'model_state_dict', 'teacher') are opened;
    ``strip`` removes a 'module.' or 'backbone.' prefix shared by every key.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'weights file {path!r} does not exist')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        sd = load_file(path, device='cpu')
    else:
        try:
            sd = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as e:
            raise ValueError(f'cannot read {path!r} as a torch state dict (loaded with '
                             f'weights_only=True): {e}') from e
    for key in ('model', 'state_dict', 'model_state_dict', 'teacher'):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
        raise ValueError(f'{path!r} is not a state dict of tensors')
    return strip_prefixes(sd, ('module.', 'backbone.') if strip else ('module.',))


def strip_prefixes(sd: Dict[str, torch.Tensor], prefixes=('module.', 'backbone.')):
    """``sd`` without each of ``prefixes`` (in turn) when every key starts with it."""
    for p in prefixes:
        if sd and all(k.startswith(p) for k in sd):
            sd = {k[len(p):]: v for k, v in sd.items()}
    return dict(sd)


def is_official_layout(sd: Dict[str, torch.Tensor]) -> bool:
    """True for the facebookresearch/dinov2 key layout."""
    return ('mask_token' in sd or 'register_tokens' in sd
            or any('.mlp.w12.' in k for k in sd))


def convert_official(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Official DINOv2 keys -> timm VisionTransformer keys (see the module docstring)."""
    sd = dict(sd)
    sd.pop('mask_token', None)
    out = {}
    if 'register_tokens' in sd:
        out['reg_token'] = sd.pop('register_tokens')
        pos = sd.pop('pos_embed')
        out['cls_token'] = sd.pop('cls_token') + pos[:, :1]
        out['pos_embed'] = pos[:, 1:]
    for k, v in sd.items():
        k = k.replace('.mlp.w12.', '.mlp.fc1.').replace('.mlp.w3.', '.mlp.fc2.')
        out[k] = v
    return out


def to_official(sd: Dict[str, torch.Tensor], embed_dim: int, swiglu: bool = False,
                cls_pos: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
    """timm DINOv2 keys -> official layout (inverse of convert_official; adds mask_token).

    For register models the official file keeps a CLS position embedding that timm folds into
    cls_token; ``cls_pos`` (1,1,C) chooses that split (zeros by default).
    """
    sd = dict(sd)
    out = {'mask_token': torch.zeros(1, embed_dim)}
    if 'reg_token' in sd:
        out['register_tokens'] = sd.pop('reg_token')
        pos = sd.pop('pos_embed')
        cls_pos = torch.zeros_like(pos[:, :1]) if cls_pos is None else cls_pos
        out['cls_token'] = sd.pop('cls_token') - cls_pos
        out['pos_embed'] = torch.cat([cls_pos, pos], dim=1)
    for k, v in sd.items():
        if swiglu:
            k = k.replace('.mlp.fc1.', '.mlp.w12.').replace('.mlp.fc2.', '.mlp.w3.')
        out[k] = v
    return out


def load_vit_weights(vit: nn.Module, path, sd: Optional[Dict[str, torch.Tensor]] = None) -> None:
    """Load a DINOv2 file (official, timm or transformers layout; .pth or .safetensors) into
    timm ``vit``; ``sd``: its tensors when already read (``path`` then only names it)."""
    sd = read_state_dict(path) if sd is None else strip_prefixes(sd)
    if is_hf_layout(sd):
        sd = hf_to_official(sd)
    if is_official_layout(sd):
        sd = convert_official(sd)
    sd = {k: v for k, v in sd.items() if not k.startswith('head.')}
    own = vit.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    if missing or unexpected:
        hint = ''
        if 'reg_token' in missing or 'reg_token' in unexpected:
            hint = (' The file and the model disagree on register tokens: use a *_reg_* model '
                    'for dinov2_vit*14_reg4_pretrain.pth files and a plain one otherwise.')
        raise ValueError(f'{path!r} does not fit this DINOv2 model: missing {missing[:5]}, '
                         f'unexpected {unexpected[:5]}.{hint}')
    if sd['pos_embed'].shape != own['pos_embed'].shape \
            and sd['pos_embed'].shape[-1] == own['pos_embed'].shape[-1]:
        sd['pos_embed'] = resample_pos_embed(sd['pos_embed'], vit)
    for k, v in sd.items():
        if v.shape != own[k].shape:
            raise ValueError(f'{path!r}: {k} has shape {tuple(v.shape)} but the model expects '
                             f'{tuple(own[k].shape)}; is the file for another ViT size '
                             f'(S/B/L/G = 384/768/1024/1536 channels)?')
    vit.load_state_dict(sd, strict=True)


def resample_vit_pos_embeds(model, state: dict, own: dict) -> None:
    """A ViT state dict loaded at another input size: resample its position embeddings
    (in ``state``, in place) to the shapes of ``own`` (the model's state dict)."""
    for k, v in list(state.items()):
        if k.endswith('pos_embed') and k in own and v.shape != own[k].shape \
                and v.shape[-1] == own[k].shape[-1]:
            state[k] = resample_pos_embed(v, model.get_submodule(k.rsplit('.', 1)[0]))
