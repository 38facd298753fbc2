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

The family is the product SIZES x (plain, registers) x AGGREGATORS: adding an aggregator is a
file in vpr_ros/models/aggregators/ (declaring OPTIONS and output_width) and a row in
AGGREGATORS below.
"""
from __future__ import annotations

import dataclasses

import torch

from vpr_ros.models.aggregators.boq import BoQ
from vpr_ros.models.aggregators.gem import GeM
from vpr_ros.models.aggregators.salad import SALAD
from vpr_ros.models.backbones.dinov2 import DINOv2Backbone, SIZES, timm_name as _timm_name
from vpr_ros.models.backbones.vit import PATCH, pick, round_to_patch, VIT_KEYS
from vpr_ros.models.base import compose, VPRModel
from vpr_ros.models.dinov2_weights import load_vit_weights, official_url
from vpr_ros.models.spec import ModelSpec, register_model
from vpr_ros.models.releases import (AGGREGATOR_SEED, detect_layout, load_release,
                                     MissingWeightsError, RandomAggregatorError,
                                     random_aggregator_message, read_release, require_layout)

__all__ = ['AGGREGATORS', 'build_dinov2', 'DINOv2Backbone', 'Head', 'load_pretrained',
           'MissingWeightsError', 'PATCH', 'RandomAggregatorError', 'round_to_patch', 'SIZES']


@dataclasses.dataclass(frozen=True)
class Head:
    """A row of the DINOv2 x aggregator table."""

    cls: type  # the aggregator class (vpr_ros.models.aggregators): OPTIONS, output_width
    input_px: int = 224  # default (square) input side
    final_norm: bool = True  # the aggregator reads the ViT tokens after its final norm
    # a paper release (backbone + aggregator, layout named like the row) loads with
    # checkpoint=; backbone-only weights would leave the aggregator random (refused unless
    # allow_random_aggregator)
    release: bool = False


AGGREGATORS = {
    'gem': Head(GeM),
    'boq': Head(BoQ, input_px=322, final_norm=False, release=True),
    'salad': Head(SALAD, release=True),
}
BOQ_KEYS = BoQ.OPTIONS
SALAD_KEYS = SALAD.OPTIONS


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


def build_dinov2(spec: ModelSpec, size: str, registers: bool, agg: str, pretrained=False,
                 dim=None, input_size=None, freeze_blocks: int = 0, checkpoint: str = '',
                 allow_random_aggregator: bool = False, **kw) -> VPRModel:
    """Factory behind every ``dinov2_*`` name (see the module docstring for the options)."""
    head = AGGREGATORS[agg]
    timm_name = _timm_name(size, registers)
    vit_kw = pick(kw, VIT_KEYS)
    # every row's options are accepted (those of other aggregators are ignored)
    options = {name: pick(kw, row.cls.OPTIONS) for name, row in AGGREGATORS.items()}[agg]
    if kw:
        known = [k for row in AGGREGATORS.values() for k in row.cls.OPTIONS]
        raise TypeError(f'{spec.name}: unknown options {sorted(kw)}; known: dim, input_size, '
                        f'freeze_blocks, checkpoint, allow_random_aggregator, '
                        f'{", ".join(VIT_KEYS + tuple(dict.fromkeys(known)))}')
    sd, layout = None, None
    if checkpoint:
        sd = read_release(checkpoint)
        layout = detect_layout(sd)
        require_layout(layout, ('dinov2', agg) if head.release else ('dinov2',), spec.name,
                       checkpoint)
    size_hw = round_to_patch(input_size or spec.input_size)
    backbone = DINOv2Backbone(timm_name, size_hw, int(freeze_blocks),
                              final_norm=head.final_norm, **vit_kw)
    if layout == 'dinov2' or (pretrained and not checkpoint):
        if head.release and not allow_random_aggregator:
            raise RandomAggregatorError(random_aggregator_message(spec.name, checkpoint))
        load_pretrained(backbone, timm_name, size, registers, checkpoint, sd)
    # a random aggregator starts from a fixed seed: two processes give the same descriptors
    with torch.random.fork_rng(devices=[]):
        if allow_random_aggregator:
            torch.manual_seed(AGGREGATOR_SEED)
        c = backbone.out_channels
        aggregator = head.cls(in_dim=c, **head.cls.fit_width(c, dim, options))
        model = compose(backbone, aggregator, spec=spec, dim=dim, input_size=size_hw)
    if head.release and layout == agg:
        load_release(model, sd, agg, checkpoint)
    elif head.release:  # what a map or training cache must not be built from unknowingly
        model.random_parts = [f'{agg} aggregator (seeded random, allow_random_aggregator)']
    return model


def _register(size: str, registers: bool, agg: str) -> None:
    head = AGGREGATORS[agg]
    name = f'dinov2_vit{size}14{"_reg" if registers else ""}_{agg}'
    spec = ModelSpec(
        name=name, role='gallery', input_size=(head.input_px, head.input_px),
        dim=head.cls.output_width(SIZES[size][1]),
        weights=f'{official_url(size, registers)} (checkpoint=...) or the timm hub',
        description=f'DINOv2 ViT-{size.upper()}/14{" + 4 registers" if registers else ""} '
                    f'+ {agg.upper()}')

    @register_model(spec)
    def _factory(spec, pretrained=False, **kw):
        return build_dinov2(spec, size, registers, agg, pretrained=pretrained, **kw)


for _size in SIZES:
    for _reg in (False, True):
        for _agg in AGGREGATORS:
            _register(_size, _reg, _agg)
