"""Training batches shared by the trainers: P x K place-balanced index batches, the query
network's input tensors (with the light/crop jitter of ``vpr-ros train asym``) and the
streaming image source: ``LazyImages`` decodes a batch's files when it is indexed, and
``stream_batches`` decodes ahead (a thread, or torch DataLoader worker processes), so the
memory used does not grow with the number of training images."""
from __future__ import annotations

import queue
import threading
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F


def place_batches(labels: np.ndarray, places_per_batch: int, per_place: int,
                  rng: np.random.Generator) -> List[np.ndarray]:
    """One epoch of P x K index batches: every place once, K images each (drawn with
    replacement only when a place has fewer than K); a last batch of fewer than 2 places is
    dropped."""
    by_place = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    order = rng.permutation(np.unique(labels))
    out = []
    for s in range(0, len(order), places_per_batch):
        group = order[s:s + places_per_batch]
        if len(group) >= 2:
            out.append(np.concatenate([
                rng.choice(by_place[c], per_place, replace=len(by_place[c]) < per_place)
                for c in group]))
    return out


def to_tensor(images: np.ndarray, mean, std, augment: bool = False,
              gen: Optional[torch.Generator] = None) -> torch.Tensor:
    """(B,h,w,3) uint8 -> normalised (B,3,h,w); ``augment`` jitters light and crop."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    if augment:
        b = x.shape[0]
        gain = torch.empty(b, 1, 1, 1).uniform_(0.5, 1.5, generator=gen)
        x = (x * gain + torch.empty(b, 1, 1, 1).uniform_(-0.1, 0.1, generator=gen)).clamp(0, 1)
        scale = torch.empty(b).uniform_(0.8, 1.0, generator=gen)
        shift = (torch.rand(b, 2, generator=gen) * 2 - 1) * (1 - scale)[:, None]
        theta = torch.zeros(b, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = scale
        theta[:, :, 2] = shift
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode='bilinear', padding_mode='border', align_corners=False)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (x - m) / s


class LazyImages:
    """(N, h, w, 3) uint8 images at ``size`` = (h, w), decoded from ``paths`` when indexed:
    ``images[i]`` is one image, ``images[idx]`` (int array, list, slice, bool mask) a decoded
    batch; ``take(idx)`` a lazy subset. ``workers`` > 0 decodes a batch on that many threads.
    Stands in for the preloaded array of vpr_ros.training.asym.TrainData."""

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, paths: Sequence[str], size, workers: int = 0):
        self.paths = list(paths)
        self.size = (int(size[0]), int(size[1]))
        self.workers = int(workers)
        self._pool = None

    @property
    def shape(self) -> Tuple[int, int, int, int]:
        return (len(self.paths), self.size[0], self.size[1], 3)

    def __len__(self) -> int:
        return len(self.paths)

    def __getstate__(self):
        return {'paths': self.paths, 'size': self.size, 'workers': self.workers, '_pool': None}

    def _index(self, idx) -> np.ndarray:
        if isinstance(idx, slice):
            return np.arange(len(self))[idx]
        idx = np.asarray(idx)
        return np.flatnonzero(idx) if idx.dtype == bool else idx.astype(np.int64)

    def __getitem__(self, idx) -> np.ndarray:
        from vpr_ros.training.gallery_cache import load_rgb
        if np.ndim(idx) == 0 and not isinstance(idx, slice):
            return load_rgb(self.paths[int(idx)], self.size)
        rows = self._index(idx)
        out = np.empty((len(rows),) + self.shape[1:], dtype=np.uint8)
        if self.workers > 0 and len(rows) > 1:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor
                self._pool = ThreadPoolExecutor(self.workers)
            imgs = self._pool.map(lambda i: load_rgb(self.paths[i], self.size), rows.tolist())
        else:
            imgs = (load_rgb(self.paths[i], self.size) for i in rows.tolist())
        for j, img in enumerate(imgs):
            out[j] = img
        return out

    def take(self, indices, axis: int = 0) -> 'LazyImages':
        """The lazy subset of ``indices`` (as ndarray.take(indices, axis=0) selects rows)."""
        if axis != 0:
            raise ValueError('LazyImages.take selects rows only (axis=0)')
        return LazyImages([self.paths[i] for i in self._index(indices).tolist()], self.size,
                          self.workers)


class _BatchDataset:
    """torch map-style dataset whose item k is decoded batch k (DataLoader, batch_size=None)."""

    def __init__(self, images: LazyImages, batches: Sequence[np.ndarray], gallery=None):
        self.images, self.batches, self.gallery = images, list(batches), gallery

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, k: int):
        idx = np.asarray(self.batches[k])
        return idx, self.images[idx], None if self.gallery is None else self.gallery[idx]


def _as_is(item):
    return item


def stream_batches(images: LazyImages, batches: Sequence[np.ndarray], gallery=None,
                   workers: int = 0, prefetch: int = 2) -> Iterator[tuple]:
    """(idx, (B,h,w,3) uint8 images, (B,D) gallery rows or None) of each batch in order.

    ``gallery``: anything indexable by rows (a memmap, feature_file.NpyRows). ``workers`` 0
    decodes on one background thread, ``prefetch`` batches ahead of the consumer; > 0 uses a
    torch DataLoader with that many worker processes. At most ``prefetch`` (threads) or
    ``2 x workers`` (DataLoader) batches are in memory at once."""
    data = _BatchDataset(images, batches, gallery)
    if workers > 0:
        from torch.utils.data import DataLoader
        loader = DataLoader(data, batch_size=None, shuffle=False, num_workers=workers,
                            collate_fn=_as_is, prefetch_factor=2)
        for idx, imgs, gal in loader:
            yield np.asarray(idx), np.asarray(imgs), gal
        return
    q: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
    stop = threading.Event()

    def produce():
        try:
            for k in range(len(data)):
                if stop.is_set():
                    return
                q.put(data[k])
        except BaseException as exc:   # handed to the consumer
            q.put(exc)
        q.put(None)
    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():   # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.01)
