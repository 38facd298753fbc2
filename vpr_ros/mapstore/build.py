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
from contextlib import closing
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from vpr_ros.imaging import ImageDecodeError, read_image_file
from vpr_ros.mapstore.manifest import MapError

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
    executor: str = 'local'            # local | ray (workers = Ray actors)
    ray_address: str = 'auto'          # auto | local | HOST:PORT | ray://HOST:PORT
    map_frame: str = 'map'             # frame of the map; bag poses must be in it, or anchored
    anchor: Tuple[float, ...] = ()     # x y yaw (m, m, rad) of the bag pose frame in map_frame
    camera_extrinsics: str = 'tf_static'  # tf_static (camera mount from the bag) | none
    camera_mount: Tuple[float, ...] = ()  # x y yaw of the camera in base_link, by hand


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
                             session=cfg.session, map_frame=cfg.map_frame, anchor=cfg.anchor,
                             extrinsics=cfg.camera_extrinsics, camera_mount=cfg.camera_mount)
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
        # a driver killed while writing leaves a .tmp file (and older versions a
        # chunk-N.tmp.npz): never a chunk to resume from
        self.chunks = sorted(c for c in self.dir.glob('chunk-*.npz')
                             if not c.name.endswith('.tmp.npz'))
        for c in self.chunks:
            with np.load(c, allow_pickle=False) as z:
                self.done.update(zip(z['keys'].tolist(), z['desc']))
                self.failed.update(z['failed'].tolist())

    def write(self, keys: List[int], desc: List[np.ndarray], failed: List[int]) -> None:
        path = self.dir / f'chunk-{len(self.chunks):05d}.npz'
        tmp = path.with_name(path.name + '.tmp')  # not matched by the chunk-*.npz glob
        with open(tmp, 'wb') as f:
            np.savez(f, keys=np.asarray(keys, np.int64), failed=np.asarray(failed, np.int64),
                     desc=np.stack(desc) if desc else np.zeros((0, 1), np.float32))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self.chunks.append(path)


def _prepare(model, size, image):
    """Decode (if a path) and preprocess one image; None when it cannot be decoded."""
    try:
        rgb = read_image_file(image) if isinstance(image, str) else image
    except (ImageDecodeError, OSError) as exc:
        log.warning('skipping image: %s', exc)
        return None
    return model.preprocess(rgb, size)


Batch = List[Tuple[int, object]]          # (item key, image path or RGB array)
Encoded = Tuple[List[int], np.ndarray, List[int], int]  # keys, (n, D) rows, failed, listed


def encode_batch(model, size, batch: Batch, pool=None) -> Encoded:
    """Decode, preprocess and encode one batch (the local path and every Ray actor)."""
    import torch
    mapper = pool.map if pool is not None else map
    tensors = list(mapper(lambda kv: _prepare(model, size, kv[1]), batch))
    ok = [(k, t) for (k, _), t in zip(batch, tensors) if t is not None]
    failed = [k for (k, _), t in zip(batch, tensors) if t is None]
    desc = np.zeros((0, int(model.dim)), np.float32)
    if ok:
        with torch.inference_mode():
            desc = model(torch.cat([t for _, t in ok])).float().cpu().numpy()
    return [k for k, _ in ok], desc, failed, len(batch)


class LocalEncoder:
    """The gallery model in this process, images decoded by ``cfg.workers`` threads."""

    def __init__(self, cfg: BuildConfig):
        self.cfg, self.model = cfg, load_model(cfg)
        self.name, self.dim = self.model.name, int(self.model.dim)

    def encode(self, batches: Iterable[Batch]) -> Iterator[Encoded]:
        size = tuple(self.cfg.input_size) or None
        with ThreadPoolExecutor(max(1, self.cfg.workers)) as pool:
            for batch in batches:
                yield encode_batch(self.model, size, batch, pool)

    def close(self) -> None:
        pass


class RayEncoder:
    """The same encoding on ``cfg.workers`` Ray workers at ``cfg.ray_address``, each loading
    the model once (a checkpoint file is shipped once through the object store)."""

    def __init__(self, cfg: BuildConfig):
        from vpr_ros.mapstore.ray_build import checkpoint_payload, RayPool
        self.pool = RayPool(_ray_setup, (dataclasses.asdict(cfg),
                                         *checkpoint_payload(cfg.checkpoint)),
                            _ray_encode, cfg.workers, cfg.ray_address,
                            name=f'vpr_ros_build_{os.getpid()}_{id(self)}')
        self.name, self.dim, self.pids = self.pool.name, self.pool.dim, self.pool.pids
        log.info('ray: %d actors (pids %s) encoding with %s', len(self.pids), self.pids,
                 self.name)

    def encode(self, batches: Iterable[Batch]) -> Iterator[Encoded]:
        for keys, desc, failed, listed in self.pool.map((b,) for b in batches):
            # a copy: a view would pin the result's buffer in the object store
            yield keys, np.array(desc, np.float32), failed, listed

    def close(self) -> None:
        self.pool.close()


class _RayState:
    def __init__(self, model, size):
        self.model, self.size, self.name, self.dim = model, size, model.name, int(model.dim)


def _ray_setup(cfg: dict, ckpt_name: str, ckpt_bytes) -> _RayState:
    """On a Ray worker: the gallery model of the build (once per worker)."""
    from vpr_ros.mapstore.ray_build import unpack_checkpoint
    cfg = BuildConfig(**cfg)
    cfg.checkpoint = unpack_checkpoint(ckpt_name, ckpt_bytes) or cfg.checkpoint
    return _RayState(load_model(cfg), tuple(cfg.input_size) or None)


def _ray_encode(state: _RayState, batch: Batch) -> Encoded:
    return encode_batch(state.model, state.size, batch)


def make_encoder(cfg: BuildConfig):
    """LocalEncoder, or a RayEncoder for ``executor='ray'``."""
    if cfg.executor == 'local':
        return LocalEncoder(cfg)
    if cfg.executor == 'ray':
        return RayEncoder(cfg)
    raise ValueError(f'unknown executor {cfg.executor!r}; use local or ray')


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
    pending_keys, pending, pending_failed, encoded = [], [], [], 0
    resumed = len(work.done) + len(work.failed)
    if resumed:
        log.info('resuming: %d images already encoded in %s', resumed, work.dir)
    encoder = make_encoder(cfg)
    try:
        from tqdm import tqdm
        bar = tqdm(desc='encoding', unit='img', disable=not cfg.progress)
    except ImportError:  # pragma: no cover
        bar = None
    t_enc = time.time()
    try:
        batches = _batches(source, work, places, max(1, cfg.batch_size))
        with closing(encoder.encode(batches)) as results:
            for ok_keys, d, failed, listed in results:
                pending_keys += ok_keys
                pending += list(d)
                pending_failed += failed
                encoded += len(ok_keys)
                if bar is not None:
                    bar.update(listed)
                if len(pending) + len(pending_failed) >= cfg.checkpoint_every:
                    work.write(pending_keys, pending, pending_failed)
                    work.done.update(zip(pending_keys, pending))
                    work.failed.update(pending_failed)
                    pending_keys, pending, pending_failed = [], [], []
                    if on_checkpoint is not None:
                        on_checkpoint(len(work.done))
    finally:
        encoder.close()
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
    store = MapStore.create(out, encoder.name, encoder.dim, dtype=cfg.dtype,
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
               'executor': cfg.executor, 'workers': cfg.workers, 'out': str(out)}
    if getattr(source, 'frames', None):
        summary['frames'] = source.frames  # bag: pose frame, anchor, camera mount applied
    store.close()
    return summary
