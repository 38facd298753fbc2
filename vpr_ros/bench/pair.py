"""The deployed pair the benchmarks measure by default: the shipped query network and its gallery.

The shipped query network is a registered query model whose trained weights are packaged in
``vpr_ros/weights/<name>.safetensors`` (preferring ``efficientnet_lite0_query*``); its gallery
is the model those weights were trained against (``compatible_with`` in the file). When none
is shipped, the packaged gallery model runs symmetric (it encodes the map and the frames), and
``Pair.note`` says which ran.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import List, Optional, Tuple

SYMMETRIC_FALLBACK = 'efficientnet_lite0_vpr'
PREFERRED_QUERY = 'efficientnet_lite0_query'


@dataclasses.dataclass(frozen=True)
class Pair:
    """What encodes the frames (query) and the map (gallery), and how it was chosen."""

    query: str                        # registered model name
    gallery: str                      # registered model name of the map's encoder
    mode: str = 'asymmetric'          # 'asymmetric' | 'symmetric'
    note: str = ''

    @property
    def label(self) -> str:
        return f'{self.query} -> {self.gallery} ({self.mode})'


def _compatible_with(path: Path) -> Optional[dict]:
    """The ``compatible_with`` stored in a vpr_ros checkpoint's header (None if absent)."""
    from vpr_ros.models.checkpoint_file import read_checkpoint
    try:
        return read_checkpoint(str(path))[1].get('compatible_with')
    except (OSError, ValueError):
        return None


def packaged_queries() -> List[Tuple[str, Path]]:
    """[(name, weights file)] of registered query models with packaged trained weights."""
    from vpr_ros.models.packaged import WEIGHTS_DIR
    from vpr_ros.models.registry import get_spec, list_models
    found = [(name, WEIGHTS_DIR / f'{name}.safetensors') for name in list_models('query')
             if '(packaged)' in get_spec(name).weights and get_spec(name).role == 'query']
    return sorted(found, key=lambda nf: (not nf[0].startswith(PREFERRED_QUERY), nf[0]))


def shipped_pair() -> Pair:
    """The shipped asymmetric pair, else the packaged gallery model symmetric."""
    from vpr_ros.models import packaged
    from vpr_ros.models.registry import get_spec
    declared = getattr(packaged, 'QUERY_PACKAGED', {})  # the registration names its gallery
    for name, path in packaged_queries():
        if not path.is_file():  # registered, weights not (yet) shipped
            continue
        compat = _compatible_with(path)
        if not compat and getattr(declared.get(name), 'gallery', ''):
            gallery = declared[name].gallery
            compat = {'encoder': gallery, 'dim': get_spec(gallery).dim}
        if compat:
            return Pair(query=name, gallery=compat['encoder'],
                        note=f'shipped query network {name}, trained against '
                             f'{compat["encoder"]} ({compat["dim"]}-d)')
    return Pair(query=SYMMETRIC_FALLBACK, gallery=SYMMETRIC_FALLBACK, mode='symmetric',
                note='no trained query network packaged in vpr_ros/weights/: the packaged '
                     f'gallery model {SYMMETRIC_FALLBACK} encodes both the map and the frames')


def resolve_models(cfg, log=print):
    """``cfg`` (a BenchConfig) with the shipped pair where query_model / gallery_model are ''
    (a query model given alone runs against its own gallery, or symmetric)."""
    if cfg.query_model and cfg.gallery_model:
        return cfg
    pair = shipped_pair() if not cfg.query_model else \
        Pair(cfg.query_model, cfg.query_model, 'symmetric', 'query model given')
    out = dataclasses.replace(cfg, query_model=cfg.query_model or pair.query,
                              gallery_model=cfg.gallery_model or pair.gallery)
    log(f'[bench] models: {out.query_model} (query) and {out.gallery_model} (gallery); '
        f'{pair.note}')
    return out


def build_query(pair: Pair, input_size=None):
    """(torch model, metadata with compatible_with) of the pair's query network."""
    from vpr_ros.models.runtime import build_torch_model
    net, meta = build_torch_model(model=pair.query, input_size=input_size, pretrained=True)
    if pair.mode == 'asymmetric' and not meta.get('compatible_with'):
        from vpr_ros.models.checkpoint import model_meta
        from vpr_ros.models.registry import get_spec
        meta = model_meta(net, {'encoder': pair.gallery, 'dim': get_spec(pair.gallery).dim})
    return net, meta
