"""Offline map building: source items -> batched, multi-threaded encoding -> MapStore.

Encoded rows are checkpointed in ``<out>/work/`` every ``checkpoint_every`` images, so a rerun
of an interrupted build skips what is already encoded. The map itself is created only when
everything is encoded, then the work folder is removed.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from vpr_ros.imaging import ImageDecodeError, read_image_file
from vpr_ros.mapstore.manifest import MapError
from vpr_ros.mapstore.sources import SourceItem

log = logging.getLogger(__name__)
WORK = 'work'


@dataclasses.dataclass
class BuildConfig:
    """Settings of ``vpr-ros build-map`` (one CLI flag per field)."""

    model: str = ''
    checkpoint: str = ''
    source: str = 'vg'                 # vg | manifest | bag
    input: str = ''
    out: str = ''
    image_topic: str = ''
    pose_topic: str = ''
    keyframe_dist: float = 2.0         # metres travelled between bag keyframes
    keyframe_angle: float = 15.0       # or degrees turned
    pose_tolerance: float = 0.1        # s between an image and its pose (bags)
    dtype: str = 'float16'
    index: str = 'auto'
    batch_size: int = 16
    workers: int = 2                   # image decoding/preprocessing threads
    robot_id: str = ''
    session: str = ''
    input_size: Tuple[int, ...] = ()   # (h, w) override of the model's input size
    checkpoint_every: int = 256        # images between work-folder checkpoints
    vg_subsets: Tuple[str, ...] = ('database',)
    progress: bool = True


def fingerprint(cfg: BuildConfig) -> Dict:
    """What must match for a rerun to reuse checkpointed rows."""
    keys = ('model', 'checkpoint', 'source', 'input', 'image_topic', 'pose_topic',
            'keyframe_dist', 'keyframe_angle', 'pose_tolerance', 'input_size', 'vg_subsets')
    d = {k: getattr(cfg, k) for k in keys}
    d['input_size'], d['vg_subsets'] = list(cfg.input_size), list(cfg.vg_subsets)
    d['input'] = str(Path(cfg.input).resolve())
    return d


def open_source(cfg: BuildConfig):
    from vpr_ros.io.bag_poses import KeyframeConfig
    from vpr_ros.mapstore import sources as src
    if cfg.source == 'vg':
        return src.VGSource(cfg.input, subsets=cfg.vg_subsets)
    if cfg.source == 'manifest':
        return src.ManifestSource(cfg.input)
    if cfg.source == 'bag':
        return src.BagSource(cfg.input, cfg.image_topic or None, cfg.pose_topic or None,
                             keyframes=KeyframeConfig(cfg.keyframe_dist, cfg.keyframe_angle),
                             tolerance_s=cfg.pose_tolerance, robot_id=cfg.robot_id,
                             session=cfg.session)
    raise ValueError(f'unknown source {cfg.source!r}; use vg, manifest or bag')


def load_model(cfg: BuildConfig):
    """The gallery model with its pretrained weights (the same loader the nodes use).

    ``cfg.checkpoint`` is a vpr_ros checkpoint, or a backbone weights file for ``cfg.model``
    (e.g. an official DINOv2 .pth).
    """
    from vpr_ros.models.checkpoint import is_checkpoint
    from vpr_ros.models.runtime import build_torch_model
    if cfg.checkpoint and not Path(cfg.checkpoint).is_file():
        raise FileNotFoundError(f'checkpoint {cfg.checkpoint} does not exist')
    if cfg.checkpoint and is_checkpoint(cfg.checkpoint):
        model, _ = build_torch_model(model=cfg.model, checkpoint=cfg.checkpoint)
    else:
        model, _ = build_torch_model(model=cfg.model, weights=cfg.checkpoint)
    return model.eval()


class _Work:
    """Checkpointed encoded rows in <out>/work: chunk-NNNNN.npz with keys + descriptors."""

    def __init__(self, out: Path, fp: Dict):
        self.dir = out / WORK
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = self.dir / 'build.json'
        if meta.is_file():
            old = json.loads(meta.read_text())
            if old != fp:
                diff = sorted(k for k in fp if old.get(k) != fp[k])
                raise MapError(f'{self.dir} holds a build with other settings ({", ".join(diff)})'
                               f'; rerun with the same settings to resume, or delete {self.dir}')
        else:
            meta.write_text(json.dumps(fp, indent=2))
        self.done: Dict[int, np.ndarray] = {}
        self.failed: set = set()
        self.chunks = sorted(self.dir.glob('chunk-*.npz'))
        for c in self.chunks:
            with np.load(c, allow_pickle=False) as z:
                self.done.update(zip(z['keys'].tolist(), z['desc']))
                self.failed.update(z['failed'].tolist())

    def write(self, keys: List[int], desc: List[np.ndarray], failed: List[int]) -> None:
        path = self.dir / f'chunk-{len(self.chunks):05d}.npz'
        tmp = path.with_suffix('.tmp.npz')
        np.savez(tmp, keys=np.asarray(keys, np.int64), failed=np.asarray(failed, np.int64),
                 desc=np.stack(desc) if desc else np.zeros((0, 1), np.float32))
        os.replace(tmp, path)
        self.chunks.append(path)


def _prepare(model, size, item: SourceItem):
    """Decode (if a path) and preprocess one image; None when it cannot be decoded."""
    try:
        rgb = read_image_file(item.image) if isinstance(item.image, str) else item.image
    except (ImageDecodeError, OSError) as exc:
        log.warning('skipping image: %s', exc)
        return None
    return model.preprocess(rgb, size)


def _clear_unfinished(out: Path) -> None:
    """A map with a work folder and no places is a build killed while creating the store."""
    from vpr_ros.mapstore.manifest import read_manifest
    if not (out / WORK).is_dir() or read_manifest(out)['num_places'] != 0:
        raise MapError(f'{out} already holds a map; choose another --out or delete it')
    for p in out.iterdir():
        if p.is_file():
            p.unlink()


def build_map(cfg: BuildConfig, on_checkpoint: Optional[Callable[[int], None]] = None) -> Dict:
    """Build ``cfg.out`` from ``cfg.source``; returns the summary dict (see run())."""
    import torch
    from vpr_ros.mapstore.store import MapStore
    out = Path(cfg.out)
    if (out / 'manifest.json').exists():
        _clear_unfinished(out)
    t0 = time.time()
    model = load_model(cfg)
    source = open_source(cfg)
    work = _Work(out, fingerprint(cfg))
    size = tuple(cfg.input_size) or None
    places, keys, descs = [], [], []
    pending_keys, pending, pending_failed, encoded = [], [], [], 0
    resumed = len(work.done) + len(work.failed)
    if resumed:
        log.info('resuming: %d images already encoded in %s', resumed, work.dir)
    items = enumerate(source)
    try:
        from tqdm import tqdm
        bar = tqdm(desc='encoding', unit='img', disable=not cfg.progress)
    except ImportError:  # pragma: no cover
        bar = None
    t_enc = time.time()
    with ThreadPoolExecutor(max(1, cfg.workers)) as pool, torch.inference_mode():
        while True:
            batch = []
            for key, item in items:
                places.append((key, item.place))
                if key in work.done or key in work.failed:
                    continue
                batch.append((key, item))
                if len(batch) >= cfg.batch_size:
                    break
            if not batch:
                break
            tensors = list(pool.map(lambda kv: _prepare(model, size, kv[1]), batch))
            ok = [(k, t) for (k, _), t in zip(batch, tensors) if t is not None]
            pending_failed += [k for (k, _), t in zip(batch, tensors) if t is None]
            if ok:
                d = model(torch.cat([t for _, t in ok])).float().cpu().numpy()
                pending_keys += [k for k, _ in ok]
                pending += list(d)
                encoded += len(ok)
            if bar is not None:
                bar.update(len(batch))
            if len(pending) + len(pending_failed) >= cfg.checkpoint_every:
                work.write(pending_keys, pending, pending_failed)
                work.done.update(zip(pending_keys, pending))
                work.failed.update(pending_failed)
                pending_keys, pending, pending_failed = [], [], []
                if on_checkpoint is not None:
                    on_checkpoint(len(work.done))
    if bar is not None:
        bar.close()
    t_enc = time.time() - t_enc
    work.done.update(zip(pending_keys, pending))
    work.failed.update(pending_failed)
    for key, place in places:
        if key in work.done:
            keys.append(key)
            descs.append(work.done[key])
    if not descs:
        raise MapError(f'no image of {cfg.input} could be encoded ({len(work.failed)} failed, '
                       f'{len(places)} listed); nothing written')
    by_key = dict(places)
    source_of_encoder = {'model': cfg.model, 'checkpoint': str(Path(cfg.checkpoint).resolve())
                         if cfg.checkpoint else '', 'input_size': list(cfg.input_size)}
    store = MapStore.create(out, model.name, int(model.dim), dtype=cfg.dtype,
                            origin=source.origin, index=cfg.index,
                            encoder_source=source_of_encoder)
    recs = [by_key[k] for k in keys]
    for r in recs:
        r.robot_id = r.robot_id or cfg.robot_id
        r.session = r.session or cfg.session
    store.add(np.stack(descs), recs)
    store.save()
    shutil.rmtree(work.dir, ignore_errors=True)
    dt = time.time() - t0
    summary = {'places': store.num_places, 'encoder': store.encoder, 'dim': store.dim,
               'index': store.index_type, 'dtype': cfg.dtype, 'version': store.version,
               'images_listed': len(places), 'images_failed': len(work.failed),
               'images_resumed': resumed, 'images_encoded_now': encoded,
               'source_warnings': int(getattr(source, 'warnings', 0)),
               'seconds': round(dt, 3), 'encode_seconds': round(t_enc, 3),
               'images_per_s': round(encoded / t_enc, 2) if t_enc > 0 else 0.0,
               'out': str(out)}
    store.close()
    return summary
