"""The papers' released checkpoints -> vpr_ros models, by explicit key maps.

Layouts, detected from the keys (``detect_layout``):

* ``boq``: BoQ ``dinov2_12288.pth`` (VPRModel): ``backbone.dino.*`` (official DINOv2) +
  ``aggregator.{proj_c, norm_input, boqs.N, fc}`` -> ``backbone.vit.*`` +
  ``aggregator.{proj, norm_in, blocks.N, mix}``.
* ``salad``: SALAD ``dino_salad.ckpt`` (maybe in a Lightning ``state_dict``):
  ``backbone.model.*`` + ``aggregator.{token_features, cluster_features, score, dust_bin}`` ->
  ``aggregator.{token_mlp, cluster_mlp, score_mlp, dustbin}`` (1x1 conv kernels -> Linear).
* ``cricavpr``: ``CricaVPR.pth``: ``backbone.*`` (DINOv2 with ``blocks.N.adapter.*``) +
  ``aggregation.1.p`` + ``encoder.*`` (cross-image encoder).
* ``d2vpr``: the D2-VPR ``{'model_state_dict': ...}``: ``backbone.*`` (ViT-S + adapters +
  ``lin``/``up_norm`` = DRM) + ``aggregation.1.p``, ``offset_generator``, ``topdown_fusion``,
  ``pos_encoder.fc``.
* ``dinov2``: anything else is read as a backbone-only DINOv2 file (official/timm/transformers).

Tensors that do not become a vpr_ros tensor are accounted for: ``mask_token`` is dropped (used
only in DINOv2 pre-training) and the adapters' conv biases are folded into the following
BatchNorm's running mean (vpr_ros's convs have none: exact in eval mode).
"""
from __future__ import annotations

import re
from typing import Dict, Tuple

import torch

from vpr_ros.models.checkpoint_file import state_mismatch
from vpr_ros.models.dinov2_weights import (convert_official, read_state_dict,
                                           resample_vit_pos_embeds)

LAYOUTS = {
    'boq': "BoQ release dinov2_12288.pth (keys backbone.dino.*, aggregator.proj_c/boqs/fc)",
    'salad': "SALAD release dino_salad.ckpt (keys backbone.model.*, aggregator.score/"
             "cluster_features/token_features/dust_bin)",
    'cricavpr': "CricaVPR release CricaVPR.pth (keys backbone.blocks.N.adapter.*, "
                "aggregation.1.p, encoder.layers.*)",
    'd2vpr': "D2-VPR release {'model_state_dict': ...} (keys backbone.lin, backbone.up_norm, "
             "offset_generator.*, topdown_fusion.*)",
    'dinov2': 'a DINOv2 backbone file (official dinov2_vit*14*_pretrain.pth, timm '
              'model.safetensors or transformers Dinov2Model)',
}
Mapped = Tuple[Dict[str, torch.Tensor], Dict[str, str]]  # (vpr_ros tensors, key -> why not)


RELEASE_FILES = {
    'dinov2_vitb14_boq': 'dinov2_12288.pth (https://github.com/amaralibey/Bag-of-Queries/'
                         'releases/download/v1.0/dinov2_12288.pth)',
    'dinov2_vitb14_salad': 'dino_salad.ckpt (linked from https://github.com/serizba/salad)',
    'cricavpr_vitb14': 'CricaVPR.pth (linked from https://github.com/Lu-Feng/CricaVPR)',
}
AGGREGATOR_SEED = 20240617  # fixed: an explicitly random aggregator is the same everywhere


class ReleaseLayoutError(ValueError):
    """A weights file is not in a layout the model can load."""


class MissingWeightsError(RuntimeError):
    """Pretrained weights were requested but none can be found offline."""


class RandomAggregatorError(MissingWeightsError):
    """Only backbone weights were given for a model whose aggregator is trained."""


def random_aggregator_message(model: str, checkpoint: str = '') -> str:
    """Why a backbone-only source is refused for ``model``, and what to pass instead."""
    src = repr(checkpoint) + ' holds only backbone weights' if checkpoint else \
        'pretrained=True without checkpoint= gives only the DINOv2 backbone'
    release = RELEASE_FILES.get(model)
    fix = (f'pass the released file {release} with checkpoint=PATH' if release else
           f'no released weights exist for {model}: pass a vpr_ros checkpoint trained with it')
    return (f'{src}: the trained aggregator of {model} would stay random and its descriptors '
            f'meaningless. {fix}, or create_model(..., allow_random_aggregator=True) to accept '
            f'a random aggregator (seeded: identical in every process; for tests/training).')


def read_release(path: str) -> Dict[str, torch.Tensor]:
    """The tensors of ``path`` with their original keys (wrappers opened, 'module.' removed)."""
    return read_state_dict(path, strip=False)


def detect_layout(sd: Dict[str, torch.Tensor]) -> str:
    """One of LAYOUTS' names for a state dict read by read_release."""
    if 'aggregator.proj_c.weight' in sd and any(k.startswith('backbone.dino.') for k in sd):
        return 'boq'
    if 'aggregator.dust_bin' in sd and any(k.startswith('backbone.model.') for k in sd):
        return 'salad'
    if 'backbone.lin.weight' in sd and 'offset_generator.0.weight' in sd:
        return 'd2vpr'
    if 'aggregation.1.p' in sd and any('.adapter.' in k for k in sd):
        return 'cricavpr'
    return 'dinov2'


def require_layout(found: str, expected, model: str, path: str) -> None:
    """ReleaseLayoutError naming the layouts ``model`` loads unless ``found`` is one of them."""
    if found not in expected:
        names = '; '.join(LAYOUTS[e] for e in expected)
        raise ReleaseLayoutError(f'{path!r} is a {LAYOUTS[found]}, which {model} cannot load. '
                                 f'{model} loads: {names}.')


def _sub(sd: Dict[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def _vit(official: Dict[str, torch.Tensor], prefix: str, dropped: Dict[str, str],
         src: str) -> Dict[str, torch.Tensor]:
    if 'mask_token' in official:
        dropped[src + 'mask_token'] = 'dropped: DINOv2 pre-training mask token'
    return {prefix + k: v for k, v in convert_official(official).items()}


def _rename(sd: Dict[str, torch.Tensor], rules, src: str, dst: str) -> Dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        for pat, rep in rules:
            new, n = re.subn(pat, rep, k)
            if n:
                out[dst + new] = v
                break
        else:
            out['?' + src + k] = v  # no rule: reported as unexpected by the loader
    return out


def map_boq(sd: Dict[str, torch.Tensor]) -> Mapped:
    """BoQ release -> ``dinov2_vitb14_boq`` keys."""
    dropped: Dict[str, str] = {}
    out = _vit(_sub(sd, 'backbone.dino.'), 'backbone.vit.', dropped, 'backbone.dino.')
    rules = ((r'^proj_c\.', 'proj.'), (r'^norm_input\.', 'norm_in.'),
             (r'^boqs\.', 'blocks.'), (r'^fc\.', 'mix.'))
    out.update(_rename(_sub(sd, 'aggregator.'), rules, 'aggregator.', 'aggregator.'))
    return out, dropped


def map_salad(sd: Dict[str, torch.Tensor]) -> Mapped:
    """SALAD release -> ``dinov2_vitb14_salad`` keys (1x1 conv kernels become Linear)."""
    dropped: Dict[str, str] = {}
    out = _vit(_sub(sd, 'backbone.model.'), 'backbone.vit.', dropped, 'backbone.model.')
    rules = ((r'^token_features\.', 'token_mlp.'), (r'^cluster_features\.', 'cluster_mlp.'),
             (r'^score\.', 'score_mlp.'), (r'^dust_bin$', 'dustbin'))
    agg = _rename(_sub(sd, 'aggregator.'), rules, 'aggregator.', 'aggregator.')
    out.update({k: v.flatten(1) if v.dim() == 4 else v for k, v in agg.items()})
    return out, dropped


_ADAPTER = ((r'^D_fc([12])\.', r'fc\1.'), (r'^branch1\.conv\.', 'branch1.0.'),
            (r'^branch1\.bn\.', 'branch1.1.'), (r'^branch([23])\.(\d)\.conv\.', r'branch\1.\2.0.'),
            (r'^branch([23])\.(\d)\.bn\.', r'branch\1.\2.1.'))


def _adapted_vit(bb: Dict[str, torch.Tensor], dst: str, dropped: Dict[str, str],
                 src: str = 'backbone.') -> Dict[str, torch.Tensor]:
    """Official ViT with ``blocks.N.adapter.*`` -> ``dst`` + ``vit.*`` / ``adapters.N.*``."""
    adapters = {k: v for k, v in bb.items() if '.adapter.' in k}
    out = _vit({k: v for k, v in bb.items() if k not in adapters}, dst + 'vit.', dropped, src)
    for k, v in adapters.items():
        block, rest = re.match(r'^blocks\.(\d+)\.adapter\.(.*)$', k).groups()
        if rest.endswith('conv.bias'):
            continue  # folded below
        out.update(_rename({rest: v}, _ADAPTER, f'{src}blocks.{block}.adapter.',
                           f'{dst}adapters.{block}.'))
    for k, bias in adapters.items():
        if not k.endswith('conv.bias'):
            continue
        bn = k[:-len('conv.bias')] + 'bn.running_mean'
        block, rest = re.match(r'^blocks\.(\d+)\.adapter\.(.*)$', bn).groups()
        key = _rename({rest: bias}, _ADAPTER, '', f'{dst}adapters.{block}.')
        (target,) = key
        out[target] = out[target] - bias  # BN(conv + b) with mean m == BN(conv) with m - b
        dropped[src + k] = f'folded into {target}'
    return out


def map_cricavpr(sd: Dict[str, torch.Tensor]) -> Mapped:
    """CricaVPR release -> ``cricavpr_vitb14`` keys (cross-image encoder included)."""
    dropped: Dict[str, str] = {}
    out = _adapted_vit(_sub(sd, 'backbone.'), 'backbone.encoder.', dropped)
    rest = {k: v for k, v in sd.items() if not k.startswith('backbone.')}
    rules = ((r'^aggregation\.1\.p$', 'p'), (r'^encoder\.', 'encoder.'))
    out.update(_rename(rest, rules, '', 'aggregator.'))
    return out, dropped


def map_d2vpr(sd: Dict[str, torch.Tensor]) -> Mapped:
    """D2-VPR release -> ``d2vpr_vits14`` keys."""
    dropped: Dict[str, str] = {}
    bb = _sub(sd, 'backbone.')
    drm = {k: bb.pop(k) for k in list(bb) if k.startswith(('lin.', 'up_norm.'))}
    out = _adapted_vit(bb, 'backbone.encoder.', dropped)
    out.update(_rename(drm, ((r'^lin\.', 'drm.0.'), (r'^up_norm\.', 'drm.1.')),
                       'backbone.', 'backbone.'))
    rest = {k: v for k, v in sd.items() if not k.startswith('backbone.')}
    rules = ((r'^aggregation\.1\.p$', 'p'), (r'^offset_generator\.', 'offset_generator.'),
             (r'^topdown_fusion\.', ''), (r'^pos_encoder\.fc\.', 'pos_encoder.'))
    out.update(_rename(rest, rules, '', 'aggregator.agg.'))
    return out, dropped


MAPS = {'boq': map_boq, 'salad': map_salad, 'cricavpr': map_cricavpr, 'd2vpr': map_d2vpr}


def load_release(model, sd: Dict[str, torch.Tensor], layout: str, path: str = '') -> dict:
    """Load a release state dict (read_release) of ``layout`` into ``model``, strictly.

    Returns {'tensors': in the file, 'loaded': vpr_ros tensors set, 'dropped': key -> why}.
    ValueError naming missing / unexpected / mis-shaped keys when the file does not fit.
    """
    state, dropped = MAPS[layout](sd)
    own = model.state_dict()
    resample_vit_pos_embeds(model, state, own)
    missing, unexpected, bad = state_mismatch(own, state)
    if missing or unexpected or bad:
        raise ReleaseLayoutError(
            f'{path!r} ({LAYOUTS[layout]}) does not fit this {model.name}: '
            f'missing {missing[:4]}, unexpected {unexpected[:4]}, wrong shapes {bad[:3]} '
            f'(other model size or aggregator options than the release?)')
    model.load_state_dict(state, strict=True)
    return {'tensors': len(sd), 'loaded': len(state), 'dropped': dropped}
