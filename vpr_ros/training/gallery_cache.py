"""Extract the frozen gallery model's features of every training image once, cached on disk.

A cache entry is ``<key>.npy`` (float32, (N, D), row i = image i) plus ``<key>.json`` (the
manifest: model, checkpoint digest, input size, image list, extraction time). The key hashes
the model name, the checkpoint's sha256, the input size and every image's path, size and mtime,
so the same model + data reuses the entry and any change re-extracts.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

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


def extract_features(model, paths: Sequence[str], batch_size: int = 32,
                     input_size=None, progress: bool = True, backend: str = 'torch',
                     threads: int = 0, executor: str = 'local', workers: int = 2,
                     ray_address: str = 'auto') -> np.ndarray:
    """(N, D) float32 descriptors of image files (model.preprocess at ``input_size``).

    ``executor='ray'`` spreads the batches over ``workers`` Ray actors at ``ray_address``
    (see vpr_ros.mapstore.ray_build), the model put once in the object store.
    """
    from tqdm import tqdm
    model.eval()
    size = tuple(input_size or model.input_size)
    if size != tuple(model.input_size):
        backend = 'torch'  # the ONNX graph is exported at the model's own input size
    if executor == 'ray':
        return _ray_extract_features(model, paths, batch_size, size, backend, threads,
                                     workers, ray_address, progress)
    if executor != 'local':
        raise ValueError(f'executor must be local or ray, got {executor!r}')
    run = gallery_runner(model, backend, threads)
    out = np.empty((len(paths), model.dim), dtype=np.float32)
    for s in tqdm(range(0, len(paths), batch_size), desc='gallery features', unit='batch',
                  disable=not progress, leave=False):
        imgs = [model.preprocess(load_rgb(p), size) for p in paths[s:s + batch_size]]
        out[s:s + len(imgs)] = run(torch.cat(imgs).numpy())
    return out


def _file_digest(path: str) -> str:
    if not path:
        return ''
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 22), b''):
            h.update(block)
    return h.hexdigest()


def cache_key(model_name: str, checkpoint: str, input_size, paths: Sequence[str]) -> str:
    """Hex digest identifying (model, weights, input size, exact image files)."""
    h = hashlib.sha256()
    h.update(json.dumps([model_name, _file_digest(checkpoint), list(input_size)]).encode())
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
    (``executor``/``workers``: see extract_features).

    Returns (features, manifest); manifest['cached'] says whether the entry was reused and
    manifest['extract_seconds'] how long the original extraction took.
    """
    size = tuple(input_size or model.input_size)
    name = model_name or model.name
    key = cache_key(name, checkpoint, size, paths)
    cache_dir = Path(cache_dir)
    npy, meta = cache_dir / f'{key}.npy', cache_dir / f'{key}.json'
    if npy.is_file() and meta.is_file():
        manifest = json.loads(meta.read_text())
        feats = np.load(npy, allow_pickle=False)
        if feats.shape == (len(paths), model.dim):
            manifest['cached'] = True
            return feats, manifest
    t0 = time.perf_counter()
    feats = extract_features(model, paths, batch_size, size, progress, backend, threads,
                             executor, workers)
    manifest = {'model': name, 'backend': backend, 'checkpoint': checkpoint,
                'input_size': list(size), 'dim': int(model.dim), 'num_images': len(paths),
                'extract_seconds': time.perf_counter() - t0,
                'paths': [os.path.abspath(p) for p in paths]}
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = npy.with_suffix('.tmp.npy')
    np.save(tmp, feats)
    os.replace(tmp, npy)
    meta.write_text(json.dumps(manifest, indent=1))
    manifest['cached'] = False
    return feats, manifest


def _ray_extract_features(model, paths, batch_size: int, size, backend: str, threads: int,
                          workers: int, address: str, progress: bool) -> np.ndarray:
    """extract_features over ``workers`` Ray workers (the model put once in the object store)."""
    from tqdm import tqdm
    from vpr_ros.mapstore.ray_build import RayPool
    out = np.empty((len(paths), model.dim), dtype=np.float32)
    calls = ((s, list(paths[s:s + batch_size])) for s in range(0, len(paths), batch_size))
    with RayPool(_ray_setup, (model, tuple(size), backend, threads), _ray_encode,
                 workers, address) as pool:
        with tqdm(total=len(paths), desc='gallery features', unit='img',
                  disable=not progress, leave=False) as bar:
            for start, feats in pool.map(calls):
                out[start:start + len(feats)] = feats
                bar.update(len(feats))
    return out


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
