"""DINOv2 gallery encoders (timm ViT-S/B/L/G 14, with or without registers) + GeM/BoQ/SALAD.

Registered as ``dinov2_vit{s,b,l,g}14[_reg]_{gem,boq,salad}``. Keyword arguments of
``create_model``: ``dim`` (output width; default the aggregator's native width), ``input_size``
(int or (h, w), rounded to a multiple of 14), ``freeze_blocks`` (freeze the patch embedding and
the first N blocks), ``checkpoint`` (a DINOv2 backbone file, official/timm/transformers
layout, or for BoQ/SALAD the paper's released file with backbone + aggregator: releases.py),
``allow_random_aggregator`` (accept backbone-only weights for BoQ/SALAD: the aggregator is then
random, from a fixed seed; refused otherwise), aggregator options (BoQ: proj_dim, num_queries,
num_layers, row_dim; SALAD: num_clusters, cluster_dim, token_dim, hidden, dropout) and ViT
architecture overrides (embed_dim, depth, num_heads; for tests).

As in the official code, BoQ reads the ViT tokens before the final norm; SALAD and GeM after.
"""
from __future__ import annotations

import timm
import torch
from torch import nn

from vpr_ros.models.aggregators import GeM
from vpr_ros.models.base import VPRModel
from vpr_ros.models.boq import BoQ
from vpr_ros.models.dinov2_weights import load_vit_weights, official_url
from vpr_ros.models.spec import ModelSpec, register_model
from vpr_ros.models.releases import (AGGREGATOR_SEED, detect_layout, load_release,
                                     MissingWeightsError, RandomAggregatorError,
                                     random_aggregator_message, read_release, require_layout)
from vpr_ros.models.salad import SALAD

__all__ = ['build_dinov2', 'DINOv2Backbone', 'load_pretrained', 'MissingWeightsError',
           'RandomAggregatorError', 'round_to_patch']

PATCH = 14
SIZES = {'s': ('small', 384), 'b': ('base', 768), 'l': ('large', 1024), 'g': ('giant', 1536)}
VIT_KEYS = ('embed_dim', 'depth', 'num_heads', 'mlp_ratio', 'init_values')
BOQ_KEYS = ('proj_dim', 'num_queries', 'num_layers', 'row_dim')
SALAD_KEYS = ('num_clusters', 'cluster_dim', 'token_dim', 'hidden', 'sinkhorn_iters', 'dropout')


def round_to_patch(size, patch: int = PATCH):
    """int or (h, w) -> (h, w), each rounded to the nearest multiple of ``patch`` (>= patch)."""
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    return tuple(max(patch, int(round(int(v) / patch)) * patch) for v in (h, w))


class DINOv2Backbone(nn.Module):
    """timm DINOv2 ViT -> ``(patch map (B,C,h,w), cls token (B,C))``, after the final norm
    unless ``final_norm=False`` (BoQ's released model reads the tokens before it)."""

    def __init__(self, timm_name: str, input_size, freeze_blocks: int = 0,
                 final_norm: bool = True, **vit_kw):
        super().__init__()
        self.vit = timm.create_model(timm_name, pretrained=False, num_classes=0,
                                     img_size=tuple(input_size), **vit_kw)
        self.out_channels = self.vit.num_features
        self.final_norm = bool(final_norm)
        self.freeze(freeze_blocks)

    def freeze(self, n: int) -> None:
        """Freeze the embeddings and the first ``n`` transformer blocks (n=0: nothing)."""
        depth = len(self.vit.blocks)
        if not 0 <= n <= depth:
            raise ValueError(f'freeze_blocks must be between 0 and the depth {depth}, got {n}')
        if n == 0:
            return
        frozen = [self.vit.patch_embed, *self.vit.blocks[:n]]
        params = [p for m in frozen for p in m.parameters()]
        params += [p for p in (self.vit.cls_token, self.vit.pos_embed,
                               getattr(self.vit, 'reg_token', None)) if p is not None]
        for p in params:
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor):
        vit = self.vit
        if self.final_norm:
            tokens = vit.forward_features(x)
        else:
            tokens = vit.blocks(vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(x)))))
        cls = tokens[:, 0]
        patches = tokens[:, vit.num_prefix_tokens:]
        h, w = x.shape[-2] // PATCH, x.shape[-1] // PATCH
        fmap = patches.transpose(1, 2).reshape(x.shape[0], patches.shape[-1], h, w)
        return fmap, cls


def _cached_hub_file(timm_name: str):
    try:
        from huggingface_hub import try_to_load_from_cache
        path = try_to_load_from_cache(f'timm/{timm_name}.lvd142m', 'model.safetensors')
    except Exception:  # noqa: BLE001 - any failure just means "not cached"
        return None
    return path if isinstance(path, str) else None


def _download_hub_file(timm_name: str) -> str:
    # huggingface_hub honours HTTPS_PROXY, HF_ENDPOINT and HF_HUB_OFFLINE
    from huggingface_hub import hf_hub_download
    return hf_hub_download(f'timm/{timm_name}.lvd142m', 'model.safetensors')


def load_pretrained(backbone: DINOv2Backbone, timm_name: str, size: str, registers: bool,
                    checkpoint: str = '', sd=None) -> str:
    """Load DINOv2 weights: ``checkpoint`` file (``sd``: its tensors, if read), else the local
    hub cache, else a download from the hub (timm's file on huggingface.co).

    Returns a description of the source; raises MissingWeightsError when none can be had.
    """
    if checkpoint:
        load_vit_weights(backbone.vit, checkpoint, sd)
        return checkpoint
    path = _cached_hub_file(timm_name)
    if not path:
        try:
            path = _download_hub_file(timm_name)
        except Exception as e:  # noqa: BLE001 - offline, proxy, hub errors: one clear message
            url = official_url(size, registers)
            raise MissingWeightsError(
                f'no DINOv2 weights for {timm_name}: the download from the model hub failed '
                f'({type(e).__name__}: {str(e)[:200]}) and no weights file was given. Download '
                f'the official backbone {url} (file {url.rsplit("/", 1)[-1]}) or timm\'s '
                f'model.safetensors from https://huggingface.co/timm/{timm_name}.lvd142m on a '
                f'connected machine, copy it here and pass it with checkpoint=PATH '
                f'(create_model) or --checkpoint PATH (vpr-ros).') from e
    load_vit_weights(backbone.vit, path)
    return path


def _pick(kw: dict, keys) -> dict:
    return {k: kw.pop(k) for k in keys if k in kw}


def build_dinov2(spec: ModelSpec, size: str, registers: bool, agg: str, pretrained=False,
                 dim=None, input_size=None, freeze_blocks: int = 0, checkpoint: str = '',
                 allow_random_aggregator: bool = False, **kw) -> VPRModel:
    """Factory behind every ``dinov2_*`` name (see the module docstring for the options)."""
    timm_name = f'vit_{SIZES[size][0]}_patch14{"_reg4" if registers else ""}_dinov2'
    vit_kw, boq_kw, salad_kw = _pick(kw, VIT_KEYS), _pick(kw, BOQ_KEYS), _pick(kw, SALAD_KEYS)
    if kw:
        raise TypeError(f'{spec.name}: unknown options {sorted(kw)}; known: dim, input_size, '
                        f'freeze_blocks, checkpoint, allow_random_aggregator, '
                        f'{", ".join(VIT_KEYS + BOQ_KEYS)}, {", ".join(SALAD_KEYS)}')
    sd, layout = None, None
    if checkpoint:
        sd = read_release(checkpoint)
        layout = detect_layout(sd)
        require_layout(layout, ('dinov2',) if agg == 'gem' else ('dinov2', agg), spec.name,
                       checkpoint)
    size_hw = round_to_patch(input_size or spec.input_size)
    backbone = DINOv2Backbone(timm_name, size_hw, int(freeze_blocks), final_norm=agg != 'boq',
                              **vit_kw)
    if layout == 'dinov2' or (pretrained and not checkpoint):
        if agg != 'gem' and not allow_random_aggregator:
            raise RandomAggregatorError(random_aggregator_message(spec.name, checkpoint))
        load_pretrained(backbone, timm_name, size, registers, checkpoint, sd)
    # a random aggregator starts from a fixed seed: two processes give the same descriptors
    with torch.random.fork_rng(devices=[]):
        if allow_random_aggregator:
            torch.manual_seed(AGGREGATOR_SEED)
        model = _with_aggregator(spec, backbone, agg, dim, size_hw, boq_kw, salad_kw)
    if layout == agg:
        load_release(model, sd, agg, checkpoint)
    return model


def _with_aggregator(spec, backbone, agg, dim, size_hw, boq_kw, salad_kw) -> VPRModel:
    c = backbone.out_channels
    if agg == 'gem':
        aggregator, native = GeM(), c
    elif agg == 'boq':
        proj = int(boq_kw.get('proj_dim') or c // 2)
        if dim and 'row_dim' not in boq_kw and int(dim) % proj == 0:
            boq_kw['row_dim'] = int(dim) // proj
        aggregator = BoQ(c, **boq_kw)
        native = aggregator.out_dim
    else:
        rest = int(dim or 0) - int(salad_kw.get('token_dim', 256))
        clusters = int(salad_kw.get('num_clusters', 64))
        if dim and 'cluster_dim' not in salad_kw and rest > 0 and rest % clusters == 0:
            salad_kw['cluster_dim'] = rest // clusters
        aggregator = SALAD(c, **salad_kw)
        native = aggregator.out_dim
    return VPRModel(spec, backbone, aggregator, native, dim or native, input_size=size_hw)


def _native_dim(size: str, agg: str) -> int:
    c = SIZES[size][1]
    return {'gem': c, 'boq': (c // 2) * 32, 'salad': 256 + 64 * 128}[agg]


def _register(size: str, registers: bool, agg: str) -> None:
    name = f'dinov2_vit{size}14{"_reg" if registers else ""}_{agg}'
    px = 322 if agg == 'boq' else 224
    spec = ModelSpec(
        name=name, role='gallery', input_size=(px, px), dim=_native_dim(size, agg),
        weights=f'{official_url(size, registers)} (checkpoint=...) or the timm hub',
        description=f'DINOv2 ViT-{size.upper()}/14{" + 4 registers" if registers else ""} '
                    f'+ {agg.upper()}')

    @register_model(spec)
    def _factory(spec, pretrained=False, **kw):
        return build_dinov2(spec, size, registers, agg, pretrained=pretrained, **kw)


for _size in SIZES:
    for _reg in (False, True):
        for _agg in ('gem', 'boq', 'salad'):
            _register(_size, _reg, _agg)
