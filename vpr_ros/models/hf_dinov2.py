"""transformers ``Dinov2Model`` / ``Dinov2WithRegistersModel`` keys -> official DINOv2 keys.

The map is written by hand from the transformers naming (transformers need not be installed):

==============================================================  ================================
transformers                                                    official facebookresearch/dinov2
==============================================================  ================================
embeddings.cls_token / mask_token / register_tokens             cls_token / mask_token / ...
embeddings.position_embeddings                                  pos_embed
embeddings.patch_embeddings.projection.{weight,bias}            patch_embed.proj.*
encoder.layer.N.norm1 / norm2                                   blocks.N.norm1 / norm2
encoder.layer.N.attention.attention.{query,key,value}.*         blocks.N.attn.qkv.* (concatenated)
encoder.layer.N.attention.output.dense.*                        blocks.N.attn.proj.*
encoder.layer.N.layer_scale{1,2}.lambda1                        blocks.N.ls{1,2}.gamma
encoder.layer.N.mlp.fc1 / fc2                                   blocks.N.mlp.fc1 / fc2
encoder.layer.N.mlp.weights_in / weights_out (SwiGLU, giant)    blocks.N.mlp.w12 / w3
layernorm.*                                                     norm.*
==============================================================  ================================

A ``dinov2.`` prefix (``Dinov2ForImageClassification``) is removed and its ``classifier.*``
dropped. ``to_hf`` is the inverse (tests build HF-layout files with it).
"""
from __future__ import annotations

import re
from typing import Dict

import torch

_RENAMES = (
    (r'^embeddings\.cls_token$', 'cls_token'),
    (r'^embeddings\.mask_token$', 'mask_token'),
    (r'^embeddings\.register_tokens$', 'register_tokens'),
    (r'^embeddings\.position_embeddings$', 'pos_embed'),
    (r'^embeddings\.patch_embeddings\.projection\.', 'patch_embed.proj.'),
    (r'^encoder\.layer\.(\d+)\.attention\.output\.dense\.', r'blocks.\1.attn.proj.'),
    (r'^encoder\.layer\.(\d+)\.layer_scale([12])\.lambda1$', r'blocks.\1.ls\2.gamma'),
    (r'^encoder\.layer\.(\d+)\.mlp\.weights_in\.', r'blocks.\1.mlp.w12.'),
    (r'^encoder\.layer\.(\d+)\.mlp\.weights_out\.', r'blocks.\1.mlp.w3.'),
    (r'^encoder\.layer\.(\d+)\.', r'blocks.\1.'),
    (r'^layernorm\.', 'norm.'),
)
_QKV = re.compile(
    r'^encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.(weight|bias)$')


def is_hf_layout(sd: Dict[str, torch.Tensor]) -> bool:
    """True for transformers' Dinov2Model key layout (optionally under ``dinov2.``)."""
    prefixes = ('embeddings.patch_embeddings.', 'dinov2.embeddings.patch_embeddings.')
    return any(k.startswith(prefixes) for k in sd)


def hf_to_official(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """transformers Dinov2 keys -> official DINOv2 keys; ValueError on a key it cannot place."""
    if any(k.startswith('dinov2.') for k in sd):
        sd = {k[len('dinov2.'):]: v for k, v in sd.items() if k.startswith('dinov2.')}
    out, qkv = {}, {}
    for k, v in sd.items():
        m = _QKV.match(k)
        if m:
            qkv.setdefault((m.group(1), m.group(3)), {})[m.group(2)] = v
            continue
        for pat, rep in _RENAMES:
            new, n = re.subn(pat, rep, k)
            if n:
                out[new] = v
                break
        else:
            raise ValueError(f'transformers Dinov2 key {k!r} has no official DINOv2 equivalent')
    for (layer, kind), parts in qkv.items():
        if set(parts) != {'query', 'key', 'value'}:
            raise ValueError(f'encoder.layer.{layer}: attention {kind} lacks one of q/k/v')
        out[f'blocks.{layer}.attn.qkv.{kind}'] = torch.cat(
            [parts['query'], parts['key'], parts['value']], dim=0)
    return out


def to_hf(official: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Official DINOv2 keys -> transformers Dinov2Model keys (inverse of hf_to_official)."""
    inverse = (
        (r'^cls_token$', 'embeddings.cls_token'), (r'^mask_token$', 'embeddings.mask_token'),
        (r'^register_tokens$', 'embeddings.register_tokens'),
        (r'^pos_embed$', 'embeddings.position_embeddings'),
        (r'^patch_embed\.proj\.', 'embeddings.patch_embeddings.projection.'),
        (r'^blocks\.(\d+)\.attn\.proj\.', r'encoder.layer.\1.attention.output.dense.'),
        (r'^blocks\.(\d+)\.ls([12])\.gamma$', r'encoder.layer.\1.layer_scale\2.lambda1'),
        (r'^blocks\.(\d+)\.mlp\.w12\.', r'encoder.layer.\1.mlp.weights_in.'),
        (r'^blocks\.(\d+)\.mlp\.w3\.', r'encoder.layer.\1.mlp.weights_out.'),
        (r'^blocks\.(\d+)\.', r'encoder.layer.\1.'), (r'^norm\.', 'layernorm.'))
    out = {}
    for k, v in official.items():
        m = re.match(r'^blocks\.(\d+)\.attn\.qkv\.(weight|bias)$', k)
        if m:
            for name, part in zip(('query', 'key', 'value'), v.chunk(3, dim=0)):
                out[f'encoder.layer.{m.group(1)}.attention.attention.{name}.{m.group(2)}'] = \
                    part.clone()
            continue
        for pat, rep in inverse:
            new, n = re.subn(pat, rep, k)
            if n:
                out[new] = v
                break
    return out
