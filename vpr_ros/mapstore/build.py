"""Offline map building: source items -> batched, multi-threaded encoding -> MapStore.

Encoded rows (and the local features extracted from the same decoded images) are checkpointed
in ``<out>/work/`` every ``checkpoint_every`` images, so a rerun of an interrupted build skips
what is already encoded. The map itself is created only when everything is encoded, then the
work folder is removed.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from contextlib import closing
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import numpy as np

from vpr_ros.mapstore.build_config import BuildConfig
from vpr_ros.mapstore.build_encoders import Batch, make_encoder
from vpr_ros.mapstore.manifest import MapError
from vpr_ros.verification.build import pack, save_build_features, unpack

log = logging.getLogger(__name__)
WORK = 'work'


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
        from vpr_ros.mapstore.bag_source import BagSource
        return BagSource(cfg.input, cfg.image_topic or None, cfg.pose_topic or None,
                         keyframes=KeyframeConfig(cfg.keyframe_dist, cfg.keyframe_angle),
                         tolerance_s=cfg.pose_tolerance, robot_id=cfg.robot_id,
                         session=cfg.session, map_frame=cfg.map_frame, anchor=cfg.anchor,
                         extrinsics=cfg.camera_extrinsics, camera_mount=cfg.camera_mount)
    if cfg.source in ('msls', 'gsv-cities'):   # vg_subsets: MSLS database and/or query
        return src.DatasetSource(cfg.input, cfg.source,
                                 subsets=tuple(s.replace('queries', 'query')
                                               for s in cfg.vg_subsets))
    raise ValueError(f'unknown source {cfg.source!r}; use vg, manifest, bag, msls or '
                     'gsv-cities')


class _Work:
    """Checkpointed encoded rows in <out>/work: chunk-NNNNN.npz with keys + descriptors (+ the
    local features of the keys, vpr_ros.verification.build.pack)."""

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
        self.features: Dict = {}  # key -> LocalFeatures
        self.failed: set = set()
        # a driver killed while writing leaves a .tmp file (and older versions a
        # chunk-N.tmp.npz): never a chunk to resume from
        self.chunks = sorted(c for c in self.dir.glob('chunk-*.npz')
                             if not c.name.endswith('.tmp.npz'))
        for c in self.chunks:
            with np.load(c, allow_pickle=False) as z:
                self.done.update(zip(z['keys'].tolist(), z['desc']))
                self.failed.update(z['failed'].tolist())
                self.features.update(unpack(z))

    def write(self, keys: List[int], desc: List[np.ndarray], failed: List[int],
              features: Optional[list] = None) -> None:
        """Checkpoint ``keys`` with their descriptors (and local features, None entries: none)
        and the ``failed`` keys as one more chunk."""
        path = self.dir / f'chunk-{len(self.chunks):05d}.npz'
        tmp = path.with_name(path.name + '.tmp')  # not matched by the chunk-*.npz glob
        with open(tmp, 'wb') as f:
            np.savez(f, keys=np.asarray(keys, np.int64), failed=np.asarray(failed, np.int64),
                     desc=np.stack(desc) if desc else np.zeros((0, 1), np.float32),
                     **pack(keys, features or [None] * len(keys)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self.chunks.append(path)


def _clear_unfinished(out: Path) -> None:
    """A map with a work folder and no places is a build killed while creating the store."""
    from vpr_ros.mapstore.manifest import read_manifest
    if not (out / WORK).is_dir() or read_manifest(out)['num_places'] != 0:
        raise MapError(f'{out} already holds a map; choose another --out or delete it')
    for p in out.iterdir():
        if p.is_file():
            p.unlink()


def _batches(source, work: _Work, places: list, size: int) -> Iterator[Batch]:
    """Batches of the items not yet in ``work``; every listed item goes to ``places``."""
    batch: Batch = []
    for key, item in enumerate(source):
        places.append((key, item.place))
        if key in work.done or key in work.failed:
            continue
        batch.append((key, item.image))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _remember(work: _Work, keys, desc, failed, feats) -> None:
    """Record an encoded (and maybe checkpointed) span in ``work``'s in-memory state."""
    work.done.update(zip(keys, desc))
    work.failed.update(failed)
    work.features.update((k, f) for k, f in zip(keys, feats) if f is not None)


def build_map(cfg: BuildConfig, on_checkpoint: Optional[Callable[[int], None]] = None) -> Dict:
    """Build ``cfg.out`` from ``cfg.source``; returns the summary dict (see run())."""
    from vpr_ros.mapstore.store import MapStore
    out = Path(cfg.out)
    if (out / 'manifest.json').exists():
        _clear_unfinished(out)
    t0 = time.time()
    source = open_source(cfg)
    work = _Work(out, fingerprint(cfg))
    places, keys, descs = [], [], []
    pending_keys, pending, pending_failed, pending_feats, encoded = [], [], [], [], 0
    resumed = len(work.done) + len(work.failed)
    if resumed:
        log.info('resuming: %d images already encoded in %s', resumed, work.dir)
    encoder = make_encoder(cfg)
    try:
        from tqdm import tqdm
        total = getattr(source, 'total', None)  # None: a bag's keyframes are not known yet
        bar = tqdm(desc='encoding', unit='img', total=total, initial=resumed if total else 0,
                   disable=not cfg.progress)
    except ImportError:  # pragma: no cover
        bar = None
    t_enc = time.time()
    try:
        batches = _batches(source, work, places, max(1, cfg.batch_size))
        with closing(encoder.encode(batches)) as results:
            for ok_keys, d, failed, listed, feats in results:
                pending_keys += ok_keys
                pending += list(d)
                pending_feats += feats if feats is not None else [None] * len(ok_keys)
                pending_failed += failed
                encoded += len(ok_keys)
                if bar is not None:
                    bar.update(listed)
                if len(pending) + len(pending_failed) >= cfg.checkpoint_every:
                    work.write(pending_keys, pending, pending_failed, pending_feats)
                    _remember(work, pending_keys, pending, pending_failed, pending_feats)
                    pending_keys, pending, pending_failed, pending_feats = [], [], [], []
                    if on_checkpoint is not None:
                        on_checkpoint(len(work.done))
    finally:
        encoder.close()
        if bar is not None:
            bar.close()
    t_enc = time.time() - t_enc
    _remember(work, pending_keys, pending, pending_failed, pending_feats)
    for key, place in places:
        if key in work.done:
            keys.append(key)
            descs.append(work.done[key])
    if not descs:
        raise MapError(f'no image of {cfg.input} could be encoded ({len(work.failed)} failed, '
                       f'{len(places)} listed); nothing written')
    by_key = dict(places)
    source_of_encoder = {'model': cfg.model, 'checkpoint': str(Path(cfg.checkpoint).resolve())
                         if cfg.checkpoint else '', 'input_size': list(cfg.input_size),
                         'weights_fingerprint': encoder.weights_fingerprint}
    store = MapStore.create(out, encoder.name, encoder.dim, dtype=cfg.dtype,
                            origin=source.origin, index=cfg.index,
                            encoder_source=source_of_encoder)
    recs = [by_key[k] for k in keys]
    for r in recs:
        r.robot_id = r.robot_id or cfg.robot_id
        r.session = r.session or cfg.session
    ids, _ = store.add(np.stack(descs), recs)
    store.save()
    features = None
    if cfg.local_features:
        features = save_build_features(source, work.features, dict(zip(keys, ids)), out,
                                       encoder.name)
    shutil.rmtree(work.dir, ignore_errors=True)
    dt = time.time() - t0
    summary = {'places': store.num_places, 'encoder': store.encoder, 'dim': store.dim,
               'index': store.index_type, 'dtype': cfg.dtype, 'version': store.version,
               'images_listed': len(places), 'images_failed': len(work.failed),
               'images_resumed': resumed, 'images_encoded_now': encoded,
               'source_warnings': int(getattr(source, 'warnings', 0)),
               'seconds': round(dt, 3), 'encode_seconds': round(t_enc, 3),
               'images_per_s': round(encoded / t_enc, 2) if t_enc > 0 else 0.0,
               'executor': cfg.executor, 'workers': cfg.workers, 'out': str(out)}
    if features is not None:
        summary['local_features'] = features
    if getattr(source, 'frames', None):
        summary['frames'] = source.frames  # bag: pose frame, anchor, camera mount applied
    store.close()
    return summary
