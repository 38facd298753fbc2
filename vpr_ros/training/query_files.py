"""Query network files of the AsymVPR trainer: the training images at the query input size
(in memory or decoded per batch) and the checkpoint that says which gallery it serves."""
from __future__ import annotations

import dataclasses
from typing import Dict, Sequence, TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from vpr_ros.training.asym import AsymTrainConfig


STREAM_BUDGET_MB = 2048.0   # load_query_images: above this, images are decoded per batch


def load_query_images(paths: Sequence[str], size, workers: int = 0,
                      progress: bool = True, stream: str = 'auto'):
    """(N, h, w, 3) uint8 of image files resized (area) to the query input size: in memory,
    or a batches.LazyImages decoding each batch from disk (``stream`` 'always', or 'auto' when
    the array would exceed STREAM_BUDGET_MB; GSV-Cities at 120x160 would need 30 GB)."""
    from tqdm import tqdm
    from vpr_ros.training.batches import LazyImages
    from vpr_ros.training.gallery_cache import load_rgb
    size = tuple(size)
    if stream not in ('auto', 'always', 'never'):
        raise ValueError(f'stream must be auto, always or never, got {stream!r}')
    if stream == 'always' or (stream == 'auto' and len(paths) * size[0] * size[1] * 3
                              > STREAM_BUDGET_MB * 2 ** 20):
        return LazyImages(paths, size, workers)
    out = np.empty((len(paths), size[0], size[1], 3), dtype=np.uint8)
    it = range(len(paths))
    if workers > 0:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(workers) as ex:
            for i, img in enumerate(tqdm(ex.map(lambda p: load_rgb(p, size), paths),
                                         total=len(paths), desc='query images',
                                         disable=not progress, leave=False)):
                out[i] = img
        return out
    for i in tqdm(it, desc='query images', disable=not progress, leave=False):
        out[i] = load_rgb(paths[i], size)
    return out


def save_query_checkpoint(path, model, cfg: 'AsymTrainConfig', gallery_name: str,
                          gallery_dim: int, history: Dict, method: str = 'asym',
                          gallery_fingerprint: str = '') -> None:
    """Checkpoint with ``compatible_with`` = the gallery model it may be searched against
    (with the fingerprint of its weights: maps are matched by it, not by the name)."""
    from vpr_ros.models.checkpoint import save_checkpoint
    compat = {'encoder': gallery_name, 'dim': int(gallery_dim)} if method != 'symmetric' \
        else None
    if compat is not None and gallery_fingerprint:
        compat['weights_fingerprint'] = gallery_fingerprint
    save_checkpoint(path, model, {
        'compatible_with': compat, 'method': method, 'input_size': list(model.input_size),
        'train_config': dataclasses.asdict(cfg),
        'history': {k: v for k, v in history.items() if k != 'iter_seconds'}})
