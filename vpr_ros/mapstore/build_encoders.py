"""The encoders of a map build: the gallery model in this process (images decoded on threads)
or on Ray workers, both encoding batches of (key, image) with the same function. Each image is
decoded once: the local features of a build with them (vpr_ros.verification.build) are
extracted from the same RGB array as its descriptor."""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Tuple

import numpy as np

from vpr_ros.imaging import ImageDecodeError, read_image_file
from vpr_ros.mapstore.build_config import BuildConfig

log = logging.getLogger(__name__)


def load_model(cfg: BuildConfig):
    """The gallery model with its pretrained weights (the same loader the nodes use).

    ``cfg.checkpoint`` is a vpr_ros checkpoint, or a backbone weights file for ``cfg.model``
    (e.g. an official DINOv2 .pth).
    """
    return _load_model(cfg)[0]


def _load_model(cfg: BuildConfig):
    """(load_model's model, the weights fingerprint its loader recorded)."""
    from vpr_ros.models.checkpoint import is_checkpoint
    from vpr_ros.models.runtime import build_torch_model
    from vpr_ros.models.weights_source import require_trained
    if cfg.checkpoint and not Path(cfg.checkpoint).is_file():
        raise FileNotFoundError(f'checkpoint {cfg.checkpoint} does not exist')
    # built at the build's input size: a ViT's patch grid (and position table) follows it
    size = tuple(cfg.input_size) or None
    if cfg.checkpoint and is_checkpoint(cfg.checkpoint):
        model, meta = build_torch_model(model=cfg.model, checkpoint=cfg.checkpoint,
                                        input_size=size)
    else:
        model, meta = build_torch_model(model=cfg.model, weights=cfg.checkpoint,
                                        input_size=size)
    require_trained(model, cfg.allow_random_weights, 'a map')
    return model.eval(), str(meta.get('weights_fingerprint') or '')


class ThreadExtractors:
    """``extract(rgb) -> LocalFeatures`` of the build's local feature settings, one OpenCV
    detector per calling thread (decoding threads share this object, not a detector)."""

    def __init__(self):
        self._local = threading.local()

    def __call__(self, rgb):
        ext = getattr(self._local, 'ext', None)
        if ext is None:
            from vpr_ros.verification.build import default_extractor
            ext = self._local.ext = default_extractor()
        return ext(rgb)


def _prepare(model, size, image, extract=None):
    """(preprocessed tensor, local features of the same decoded image or None) of one image
    (decoded if a path); None when it cannot be decoded."""
    try:
        rgb = read_image_file(image) if isinstance(image, str) else image
    except (ImageDecodeError, OSError) as exc:
        log.warning('skipping image: %s', exc)
        return None
    feats = extract(rgb) if extract is not None else None
    return model.preprocess(rgb, size), feats


Batch = List[Tuple[int, object]]          # (item key, image path or RGB array)
# keys, (n, D) rows, failed, listed, local features of keys[i] (None: not extracted)
Encoded = Tuple[List[int], np.ndarray, List[int], int, Optional[list]]


def encode_batch(model, size, batch: Batch, pool=None, extract=None) -> Encoded:
    """Decode, preprocess and encode one batch (the local path and every Ray actor); with
    ``extract`` (a ThreadExtractors) also the local features of each decoded image."""
    import torch
    mapper = pool.map if pool is not None else map
    prepared = list(mapper(lambda kv: _prepare(model, size, kv[1], extract), batch))
    ok = [(k, p) for (k, _), p in zip(batch, prepared) if p is not None]
    failed = [k for (k, _), p in zip(batch, prepared) if p is None]
    desc = np.zeros((0, int(model.dim)), np.float32)
    if ok:
        with torch.inference_mode():
            desc = model(torch.cat([t for _, (t, _) in ok])).float().cpu().numpy()
    feats = [f for _, (_, f) in ok] if extract is not None else None
    return [k for k, _ in ok], desc, failed, len(batch), feats


class LocalEncoder:
    """The gallery model in this process, images decoded by ``cfg.workers`` threads."""

    def __init__(self, cfg: BuildConfig):
        self.cfg = cfg
        self.model, self.weights_fingerprint = _load_model(cfg)
        self.name, self.dim = self.model.name, int(self.model.dim)
        self.extract = ThreadExtractors() if cfg.local_features else None

    def encode(self, batches: Iterable[Batch]) -> Iterator[Encoded]:
        size = tuple(self.cfg.input_size) or None
        with ThreadPoolExecutor(max(1, self.cfg.workers)) as pool:
            for batch in batches:
                yield encode_batch(self.model, size, batch, pool, self.extract)

    def close(self) -> None:
        pass


class RayEncoder:
    """The same encoding on ``cfg.workers`` Ray workers at ``cfg.ray_address``, each loading
    the model once (a checkpoint file is shipped once through the object store)."""

    def __init__(self, cfg: BuildConfig):
        from vpr_ros.mapstore.ray_build import checkpoint_payload, RayPool
        # loaded here too: untrained weights are refused before any worker starts, and the
        # manifest records the fingerprint of the weights the workers load from the same file
        driver, fp = _load_model(cfg)  # random parts (if allowed) differ per worker: no fp
        self.weights_fingerprint = '' if driver.untrained_parts else fp
        del driver
        self.pool = RayPool(_ray_setup, (dataclasses.asdict(cfg),
                                         *checkpoint_payload(cfg.checkpoint)),
                            _ray_encode, cfg.workers, cfg.ray_address,
                            name=f'vpr_ros_build_{os.getpid()}_{id(self)}')
        self.name, self.dim, self.pids = self.pool.name, self.pool.dim, self.pool.pids
        log.info('ray: %d actors (pids %s) encoding with %s', len(self.pids), self.pids,
                 self.name)

    def encode(self, batches: Iterable[Batch]) -> Iterator[Encoded]:
        for keys, desc, failed, listed, feats in self.pool.map((b,) for b in batches):
            # copies: a view would pin the result's buffer in the object store
            yield keys, np.array(desc, np.float32), failed, listed, _own(feats)

    def close(self) -> None:
        self.pool.close()


def _own(feats):
    """Local features of a Ray result in memory of their own."""
    if feats is None:
        return None
    return [dataclasses.replace(f, xy=np.array(f.xy), desc=np.array(f.desc)) for f in feats]


class _RayState:
    def __init__(self, model, size, local_features: bool):
        self.model, self.size, self.name, self.dim = model, size, model.name, int(model.dim)
        self.extract = ThreadExtractors() if local_features else None


def _ray_setup(cfg: dict, ckpt_name: str, ckpt_bytes) -> _RayState:
    """On a Ray worker: the gallery model of the build (once per worker)."""
    from vpr_ros.mapstore.ray_build import unpack_checkpoint
    cfg = BuildConfig(**cfg)
    cfg.checkpoint = unpack_checkpoint(ckpt_name, ckpt_bytes) or cfg.checkpoint
    return _RayState(load_model(cfg), tuple(cfg.input_size) or None, cfg.local_features)


def _ray_encode(state: _RayState, batch: Batch) -> Encoded:
    return encode_batch(state.model, state.size, batch, extract=state.extract)


def make_encoder(cfg: BuildConfig):
    """LocalEncoder, or a RayEncoder for ``executor='ray'``."""
    if cfg.executor == 'local':
        return LocalEncoder(cfg)
    if cfg.executor == 'ray':
        return RayEncoder(cfg)
    raise ValueError(f'unknown executor {cfg.executor!r}; use local or ray')
