"""Extract the frozen gallery model's features of every training image once, cached on disk.

A cache entry is ``<key>.npy`` (float32, (N, D), row i = image i) plus ``<key>.json`` (the
manifest: model, checkpoint digest, input size, extraction time) and ``<key>.paths.txt`` (the
image list). The key hashes
the model name, the checkpoint's sha256, the input size and every image's path, size and mtime,
so the same model + data reuses the entry and any change re-extracts. The entry is written
batch by batch into ``<key>.partial.npy`` on disk (vpr_ros.training.feature_file; an
interrupted extraction resumes from ``<key>.partial.json``) and returned as a read-only
memmap, so memory does not grow with the number of images (GSV-Cities: ~530k).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import weakref
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from vpr_ros.imaging import read_image_file


def load_rgb(path, size: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """uint8 RGB (H, W, 3) of an image file, resized (area) to ``size`` = (h, w) if given."""
    rgb = read_image_file(path)
    if size and tuple(rgb.shape[:2]) != tuple(size):
        import cv2
        rgb = cv2.resize(rgb, (int(size[1]), int(size[0])), interpolation=cv2.INTER_AREA)
    return rgb


def gallery_runner(model, backend: str = 'torch', threads: int = 0):
    """A function (B,3,h,w) float32 numpy -> (B, D) descriptors running the frozen ``model``.

    ``backend``: 'torch', 'onnxruntime' (the model exported to ONNX in memory; several times
    faster on CPU for convolutional galleries) or 'auto' (onnxruntime when installed).
    """
    if backend == 'auto':
        import importlib.util
        backend = 'onnxruntime' if importlib.util.find_spec('onnxruntime') else 'torch'
    if backend not in ('torch', 'onnxruntime'):
        raise ValueError(f"gallery backend must be torch, onnxruntime or auto, got {backend!r}")
    from vpr_ros.models.checkpoint import model_meta
    from vpr_ros.models.runtime import encoder_for
    return encoder_for(model.eval(), model_meta(model), backend, threads)._run


class _ArrayOut:
    """The in-memory sink of extract_features (its default)."""

    def __init__(self, n: int, dim: int):
        self.array = np.empty((n, dim), dtype=np.float32)

    def write(self, start: int, rows: np.ndarray) -> None:
        self.array[start:start + len(rows)] = rows


def extract_features(model, paths: Sequence[str], batch_size: int = 32,
                     input_size=None, progress: bool = True, backend: str = 'torch',
                     threads: int = 0, executor: str = 'local', workers: int = 2,
                     ray_address: str = 'auto', out=None, start: int = 0,
                     on_batch: Optional[Callable[[int], None]] = None) -> np.ndarray:
    """(N, D) float32 descriptors of image files (model.preprocess at ``input_size``).

    ``executor='ray'`` spreads the batches over ``workers`` Ray actors at ``ray_address``
    (see vpr_ros.mapstore.ray_build), the model put once in the object store. ``out``: a sink
    with ``write(start, rows)`` (e.g. feature_file.NpyRowWriter; then None is returned) instead
    of an array in memory; ``start`` skips the rows already done; ``on_batch(rows_done)`` is
    called after each batch (in order).
    """
    model.eval()
    size = tuple(input_size or model.input_size)
    if size != tuple(model.input_size):
        backend = 'torch'  # the ONNX graph is exported at the model's own input size
    if executor not in ('local', 'ray'):
        raise ValueError(f'executor must be local or ray, got {executor!r}')
    sink = out if out is not None else _ArrayOut(len(paths), model.dim)
    if executor == 'ray':
        _ray_extract_features(model, paths, batch_size, size, backend, threads,
                              workers, ray_address, progress, sink, start, on_batch)
    else:
        _local_extract(model, paths, batch_size, size, backend, threads, progress, sink, start,
                       on_batch)
    return sink.array if out is None else None


def _local_extract(model, paths, batch_size, size, backend, threads, progress, sink, start,
                   on_batch) -> None:
    from tqdm import tqdm
    run = gallery_runner(model, backend, threads)
    for s in tqdm(range(start, len(paths), batch_size), desc='gallery features',
                  unit='batch', disable=not progress, leave=False):
        imgs = [model.preprocess(load_rgb(p), size) for p in paths[s:s + batch_size]]
        sink.write(s, np.asarray(run(torch.cat(imgs).numpy()), np.float32))
        if on_batch is not None:
            on_batch(s + len(imgs))


def _file_digest(path: str) -> str:
    if not path:
        return ''
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 22), b''):
            h.update(block)
    return h.hexdigest()


# model -> (weights stamp, fingerprint): a model's weights are hashed once, not per call
_FINGERPRINTS: 'weakref.WeakKeyDictionary' = weakref.WeakKeyDictionary()


def gallery_fingerprint(model) -> str:
    """sha256 of the weights ``model`` runs with: the one its loader recorded in
    ``model.meta``, else computed once per model object (and again only when its weights have
    changed since: another tensor, or one modified in place)."""
    fp = (getattr(model, 'meta', None) or {}).get('weights_fingerprint', '')
    if fp or not hasattr(model, 'state_dict'):
        return fp
    stamp = _weights_stamp(model)
    try:
        known = _FINGERPRINTS.get(model)
    except TypeError:  # not weak-referenceable: never memoised
        known, stamp = None, None
    if known is not None and stamp is not None and known[0] == stamp:
        return known[1]
    from vpr_ros.models.checkpoint import weights_fingerprint
    fp = weights_fingerprint(model)
    if stamp is not None:
        _FINGERPRINTS[model] = (stamp, fp)
    return fp


def _weights_stamp(model) -> Optional[tuple]:
    """What changes when the weights of ``model`` may have (each state tensor's identity,
    storage and in-place version counter), in microseconds; None when unknown."""
    try:
        return tuple((name, id(t), t.data_ptr(), t._version)
                     for name, t in model.state_dict(keep_vars=True).items())
    except (RuntimeError, AttributeError, TypeError):  # e.g. inference tensors: no version
        return None


def cache_key(model_name: str, checkpoint: str, input_size, paths: Sequence[str],
              fingerprint: str = '') -> str:
    """Hex digest identifying (model, weights, input size, exact image files); the weights by
    their fingerprint when known (the same weights under another file name share an entry),
    else by the checkpoint file's digest."""
    h = hashlib.sha256()
    weights = fingerprint or _file_digest(checkpoint)
    h.update(json.dumps([model_name, weights, list(input_size)]).encode())
    for p in paths:
        st = os.stat(p)
        h.update(f'{os.path.abspath(p)}|{st.st_size}|{st.st_mtime_ns}\n'.encode())
    return h.hexdigest()[:24]


def cached_gallery_features(model, paths: Sequence[str], cache_dir, model_name: str = '',
                            checkpoint: str = '', input_size=None, batch_size: int = 32,
                            progress: bool = True, backend: str = 'torch',
                            threads: int = 0, executor: str = 'local',
                            workers: int = 2) -> Tuple[np.ndarray, Dict]:
    """Gallery features of ``paths``, from ``cache_dir`` when present, extracted otherwise
    (``executor``/``workers``: see extract_features), as a read-only (N, D) memmap.

    Returns (features, manifest); manifest['cached'] says whether the entry was reused and
    manifest['extract_seconds'] how long the original extraction took.
    """
    size = tuple(input_size or model.input_size)
    name = model_name or model.name
    fingerprint = gallery_fingerprint(model)
    key = cache_key(name, checkpoint, size, paths, fingerprint)
    cache_dir = Path(cache_dir)
    npy, meta = cache_dir / f'{key}.npy', cache_dir / f'{key}.json'
    hit = _cached(npy, meta, (len(paths), model.dim))
    if hit is not None:
        return hit
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _key_lock(cache_dir / f'{key}.lock'):  # one extraction per key across processes
        hit = _cached(npy, meta, (len(paths), model.dim))  # another process made it meanwhile
        if hit is not None:
            return hit
        seconds = _extract_to_npy(model, paths, cache_dir / f'{key}.partial', batch_size,
                                  size, progress, backend, threads, executor, workers)
        manifest = {'model': name, 'backend': backend, 'checkpoint': checkpoint,
                    'weights_fingerprint': fingerprint,
                    'input_size': list(size), 'dim': int(model.dim), 'num_images': len(paths),
                    'extract_seconds': seconds, 'paths_file': f'{key}.paths.txt'}
        # the image list (row i = line i) apart: a cache hit does not load 530k paths
        (cache_dir / f'{key}.paths.txt').write_text(
            ''.join(os.path.abspath(p) + '\n' for p in paths))
        os.replace(cache_dir / f'{key}.partial.npy', npy)
        tmp = meta.with_name(meta.name + '.tmp')
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, meta)  # the manifest appears whole, after the features
        (cache_dir / f'{key}.partial.json').unlink(missing_ok=True)
    manifest['cached'] = False
    return np.load(npy, mmap_mode='r', allow_pickle=False), manifest


def _cached(npy: Path, meta: Path, shape) -> Optional[Tuple[np.ndarray, Dict]]:
    """(features, manifest) of a complete cache entry of ``shape``, else None."""
    if not (npy.is_file() and meta.is_file()):
        return None
    manifest = json.loads(meta.read_text())
    feats = np.load(npy, mmap_mode='r', allow_pickle=False)
    if feats.shape != tuple(shape):
        return None
    manifest['cached'] = True
    return feats, manifest


@contextlib.contextmanager
def _key_lock(path: Path):
    """An exclusive flock on ``path`` for the duration (released when the process dies)."""
    import fcntl
    with open(path, 'a') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _extract_to_npy(model, paths, stem: Path, batch_size, size, progress, backend, threads,
                    executor, workers, every_s: float = 30.0) -> float:
    """Fill ``<stem>.npy`` batch by batch, resuming after the rows ``<stem>.json`` records;
    returns the extraction seconds (all attempts)."""
    from vpr_ros.training.feature_file import create_npy, npy_layout, NpyRowWriter
    part, state = stem.parent / f'{stem.name}.npy', stem.parent / f'{stem.name}.json'
    shape = (len(paths), int(model.dim))
    done, spent = 0, 0.0
    if part.is_file() and state.is_file() and npy_layout(part)[0] == shape:
        st = json.loads(state.read_text())
        done, spent = int(st['done']), float(st['seconds'])
    else:
        create_npy(part, shape)
    t0, last = time.perf_counter(), [time.perf_counter()]
    with NpyRowWriter(part) as writer:
        def checkpoint(rows_done: int) -> None:
            if time.perf_counter() - last[0] >= every_s:
                writer.flush()
                state.write_text(json.dumps({'done': rows_done, 'seconds':
                                             spent + time.perf_counter() - t0}))
                last[0] = time.perf_counter()
        extract_features(model, paths, batch_size, size, progress, backend, threads,
                         executor, workers, out=writer, start=done, on_batch=checkpoint)
        writer.flush()
    return spent + time.perf_counter() - t0


def _ray_extract_features(model, paths, batch_size: int, size, backend: str, threads: int,
                          workers: int, address: str, progress: bool, sink, start: int = 0,
                          on_batch=None) -> None:
    """extract_features over ``workers`` Ray workers (the model put once in the object store);
    batches may come back out of order, ``on_batch`` sees the rows done in order."""
    from tqdm import tqdm
    from vpr_ros.mapstore.ray_build import RayPool
    calls = ((s, list(paths[s:s + batch_size])) for s in range(start, len(paths), batch_size))
    ends, done = set(), start
    with RayPool(_ray_setup, (model, tuple(size), backend, threads), _ray_encode,
                 workers, address) as pool:
        with tqdm(total=len(paths) - start, desc='gallery features', unit='img',
                  disable=not progress, leave=False) as bar:
            for first, feats in pool.map(calls):
                sink.write(first, feats)
                bar.update(len(feats))
                ends.add((first, first + len(feats)))
                while any(a == done for a, _ in ends):
                    span = next(e for e in ends if e[0] == done)
                    ends.discard(span)
                    done = span[1]
                    if on_batch is not None:
                        on_batch(done)


class _RayGallery:
    def __init__(self, model, size, backend: str, threads: int):
        self.model, self.size, self.name, self.dim = model, size, model.name, int(model.dim)
        self.run = gallery_runner(model, backend, threads)


def _ray_setup(model, size, backend: str, threads: int) -> _RayGallery:
    return _RayGallery(model, size, backend, threads)


def _ray_encode(state: _RayGallery, start: int, paths):
    import torch
    imgs = [state.model.preprocess(load_rgb(p), state.size) for p in paths]
    return start, np.asarray(state.run(torch.cat(imgs).numpy()), np.float32)
