"""MapStore: a persistent, versioned place map (descriptors + places + faiss index).

Readers memory-map the current version and can follow a writer with ``reload_if_changed()``.
A writable store keeps added places in memory until ``save()`` publishes a new version
atomically (see vpr_ros.mapstore.persist). One writer per map (an flock); any number of
readers. All public methods take an internal lock, so service callbacks may call them from
several threads.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from vpr_ros.mapstore import index as idx
from vpr_ros.mapstore import persist
from vpr_ros.mapstore import places as pl
from vpr_ros.mapstore.manifest import (check_compatible, DTYPES, FORMAT_VERSION, MANIFEST,
                                       MapError, read_manifest)
from vpr_ros.mapstore.places import PlaceRecord
from vpr_ros.mapstore.store_ops import StoreOpsMixin
from vpr_ros.mapstore.store_save import StoreSaveMixin


def _leftover(p: Path) -> bool:
    """Entries an empty map folder may hold: a build's work folder, a writer lock, temp files of
    an interrupted create."""
    return p.name in ('work', '.writer.lock') or p.name.endswith('.tmp')


class MapStore(StoreOpsMixin, StoreSaveMixin):
    """One map directory. Build with ``create``; load with ``open``."""

    def __init__(self, path: Path, version: persist.Version, writable: bool, lock_fd=None,
                 checksums: bool = True):
        self.path = Path(path)
        self.writable = writable
        self._checksums = checksums
        self._lock = threading.RLock()
        self._lock_fd = lock_fd
        self._v = version
        self._index = version.index
        self._index_dirty = False
        self._itype = version.manifest['index_type']
        self._index_spec = version.manifest['index_spec']
        self._pending_desc: List[np.ndarray] = []
        self._pending_places: List[PlaceRecord] = []
        self._pending_geo: List[np.ndarray] = []
        self._pending_requests = {}  # request_id -> (place ids, skipped), saved with the places
        self._rows = self._rows_version = None   # pread row reader of one saved version
        self._manifest_stat = self._stat()

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def create(cls, path, encoder: str, dim: int, dtype: str = 'float16', frame_id: str = 'map',
               origin=None, index: str = 'auto',
               encoder_source: Optional[dict] = None) -> 'MapStore':
        """Create an empty map (saved as version 1) and return it writable.

        ``origin`` is a vpr_ros.geo.MapOrigin (or dict of its fields) anchoring the map frame.
        ``encoder_source`` ({'model', 'checkpoint', 'input_size', 'weights_fingerprint'})
        says how to rebuild the encoder, so a query_encoder without a model set encodes frames
        exactly as the map was (and a query network is checked against the weights).
        """
        root = Path(path)
        if root.exists() and (not root.is_dir() or any(not _leftover(p) for p in root.iterdir())):
            raise MapError(f'{root} already exists and is not empty; open it with '
                           f'MapStore.open(..., writable=True) to extend it, or pick a new path')
        if dtype not in DTYPES:
            raise MapError(f'dtype {dtype!r} is not one of {DTYPES}')
        if not encoder or int(dim) <= 0:
            raise MapError(f'encoder name and a positive dim are required, got {encoder!r}, '
                           f'{dim}')
        if origin is not None and not isinstance(origin, dict):
            origin = origin.as_dict()   # with the far UTM zones' slots (vpr_ros.geo)
        itype = idx.choose_index(index, 0, int(dim))
        if not idx.new_index(itype, int(dim)).is_trained:  # validates the string too
            itype = 'Flat'  # a trained index is built by save() once there are places
        root.mkdir(parents=True, exist_ok=True)
        lock_fd = persist.take_writer_lock(root)
        m = {'format_version': FORMAT_VERSION, 'encoder': str(encoder), 'dim': int(dim),
             'dtype': dtype, 'normalization': 'l2', 'frame_id': frame_id, 'origin': origin,
             'num_places': 0, 'version': '', 'version_counter': 1, 'index_spec': index,
             'index_type': itype, 'files': {}, 'created': time.time(),
             'map_id': uuid.uuid4().hex}  # kept by copies: merging one into the other doubles
        if encoder_source:
            m['encoder_source'] = {'model': str(encoder_source.get('model') or ''),
                                   'checkpoint': str(encoder_source.get('checkpoint') or ''),
                                   'input_size': [int(v) for v in
                                                  encoder_source.get('input_size') or ()]}
            if encoder_source.get('weights_fingerprint'):  # sha256 of the weights used
                m['encoder_source']['weights_fingerprint'] = str(
                    encoder_source['weights_fingerprint'])
        empty = idx.new_index(itype, int(dim))
        try:
            m, _ = persist.write_version(root, None, m, None, [], empty, itype)
        except BaseException:
            os.close(lock_fd)
            for p in root.iterdir():  # the folder held nothing else: leave it as it was found
                if p.is_file():
                    p.unlink(missing_ok=True)
            raise
        return cls(root, persist.load_version(root, m), True, lock_fd)

    @classmethod
    def open(cls, path, expected_encoder: Optional[str] = None,
             expected_dim: Optional[int] = None, writable: bool = False,
             verify_checksums: bool = True) -> 'MapStore':
        """Load and validate a map; MapError says what is wrong (naming both encoders/dims)."""
        root = Path(path)
        lock_fd = persist.take_writer_lock(root) if writable and root.is_dir() else None
        try:
            version = persist.load_current(root, verify_checksums)
            check_compatible(version.manifest, expected_encoder, expected_dim, str(root))
            if writable:
                persist.collect_garbage(root, [version.manifest['files']])
        except BaseException:
            if lock_fd is not None:
                os.close(lock_fd)
            raise
        return cls(root, version, writable, lock_fd, verify_checksums)

    def close(self) -> None:
        """Release the places connection and the writer lock (pending changes are dropped)."""
        with self._lock:
            self._v.con.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- properties ------------------------------------------------------------------------
    manifest = property(lambda self: dict(self._v.manifest), doc='current manifest (a copy)')
    encoder = property(lambda self: self._v.manifest['encoder'])
    dim = property(lambda self: int(self._v.manifest['dim']))
    dtype = property(lambda self: self._v.manifest['dtype'])
    frame_id = property(lambda self: self._v.manifest['frame_id'])
    origin = property(lambda self: self._v.manifest.get('origin'))
    index_type = property(lambda self: str(self._itype))
    version = property(lambda self: self._v.manifest['version'])
    num_saved = property(lambda self: int(self._v.manifest['num_places']))
    num_places = property(lambda self: self.num_saved + len(self._pending_places))
    dirty = property(lambda self: bool(self._pending_places or self._pending_requests)
                     or self._index_dirty)
    map_id = property(lambda self: str(self._v.manifest.get('map_id') or ''))

    # -- queries ---------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
        """Top-k cosine scores float32 (Q,k) and place ids int64 (Q,k); -1 where fewer than k."""
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f'queries must be (Q, {self.dim}), got {q.shape}')
        if not np.all(np.isfinite(q)):
            raise ValueError('queries contain NaN or infinite values')
        if int(k) < 1:
            raise ValueError(f'k must be >= 1, got {k}')
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        with self._lock:
            if self._index is None:  # stale after a large add; rebuilt once, on demand
                self.reindex(self._index_spec)
            return idx.search(self._index, q, int(k))

    def set_search_params(self, ef_search: int = 0, nprobe: int = 0) -> None:
        """HNSW efSearch / IVF nprobe of the live index (higher: better recall, slower)."""
        with self._lock:
            if self._index is not None:
                idx.set_search_params(self._index, ef_search, nprobe)

    def get_places(self, place_ids: Sequence[int]) -> List[PlaceRecord]:
        """PlaceRecords in the order of ``place_ids`` (KeyError for an unknown id)."""
        ids = [int(i) for i in np.asarray(place_ids, dtype=np.int64).ravel()]
        with self._lock:
            try:
                saved = pl.fetch(self._v.con, [i for i in ids if 0 <= i < self.num_saved])
            except sqlite3.Error as exc:
                raise MapError(f'{self.path}: places file unreadable ({exc}); '
                               f'{persist.files_problem(self.path, self._v)}') from None
            out = []
            for i in ids:
                if i in saved:
                    out.append(saved[i])
                elif self.num_saved <= i < self.num_places:
                    out.append(self._pending_places[i - self.num_saved])
                else:
                    raise KeyError(f'place id {i} is not in the map (0..{self.num_places - 1})')
            return out

    def _geo(self, ids) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_places):
            raise KeyError(f'place ids out of range 0..{self.num_places - 1}: {ids}')
        if self._pending_geo:
            return np.concatenate([self._v.geo, *self._pending_geo])[ids]
        return self._v.geo[ids]

    def positions(self, place_ids) -> np.ndarray:
        """float64 (N,3) map-frame x, y, z of the places."""
        with self._lock:
            return self._geo(place_ids)[:, :3].copy()

    def yaws(self, place_ids) -> np.ndarray:
        """float64 (N,) yaw (radians) of the places."""
        with self._lock:
            return self._geo(place_ids)[:, 3].copy()

    def _saved_rows(self):
        """The current version's row reader: pread, so the rows a matcher reads per frame do
        not leave memory-map pages resident in its RSS (made once per version)."""
        if self._rows_version is not self._v:
            self._rows, self._rows_version = idx.rows_for(self._v.descriptors), self._v
        return self._rows

    def descriptors_of(self, place_ids) -> np.ndarray:
        """float32 (N,dim) stored descriptors (L2-normalised, at the stored precision)."""
        ids = np.asarray(place_ids, dtype=np.int64).ravel()
        with self._lock:
            if ids.size and (ids.min() < 0 or ids.max() >= self.num_places):
                raise KeyError(f'place ids out of range 0..{self.num_places - 1}')
            out = np.empty((ids.size, self.dim), np.float32)
            saved = ids < self.num_saved
            if saved.any():
                self.check_files()
                out[saved] = self._saved_rows()(ids[saved])  # the reader sorts its reads
            if (~saved).any():
                pend = np.concatenate(self._pending_desc)
                out[~saved] = pend[ids[~saved] - self.num_saved].astype(np.float32)
            return out

    # -- following a writer, damage on disk -----------------------------------------------
    def check_files(self) -> None:
        """MapError when the served version's data files changed on disk since they were
        loaded (truncated, deleted, replaced): nothing may read them then (a truncated memory
        map is a SIGBUS). Files restored to their saved content (size and sha256 as in the
        manifest) are loaded again, keeping unsaved changes. Costs a few stats when intact."""
        with self._lock:
            problem = persist.files_problem(self.path, self._v)
            if not problem:
                return
            try:
                fresh = persist.load_version(self.path, self._v.manifest, checksums=True,
                                             with_index=False)
            except MapError as exc:
                raise MapError(f'{self.path}: {problem}; refused until the files are restored '
                               f'or the map is reloaded ({exc})') from None
            old = self._v
            self._v = persist.Version(old.manifest, fresh.descriptors, fresh.con, old.geo,
                                      old.index, fresh.identity)
            self._rows = self._rows_version = None
            old.con.close()

    def _stat(self):
        try:
            st = os.stat(self.path / MANIFEST)
            return st.st_ino, st.st_mtime_ns, st.st_size
        except OSError:
            return None

    def reload_if_changed(self) -> bool:
        """Load a newer saved version if the manifest changed (cheap stat otherwise).

        Returns True when a new version was loaded. A writable store with unsaved changes is
        never reloaded. On a broken new version MapError is raised and the old one stays.
        """
        with self._lock:
            st = self._stat()
            if st == self._manifest_stat or self.dirty:
                self.check_files()
                return False
            m = read_manifest(self.path)
            if m['version'] == self.version:
                self._manifest_stat = st
                return False
            new = persist.load_current(self.path, self._checksums)
            check_compatible(new.manifest, self.encoder, self.dim, str(self.path))
            old, self._v, self._index = self._v, new, new.index
            self._itype = new.manifest['index_type']
            self._index_spec = new.manifest['index_spec']
            self._manifest_stat = st
            old.con.close()
            return True

    # -- mutation --------------------------------------------------------------------------
    def _require_writable(self) -> None:
        if not self.writable:
            raise MapError(f'{self.path} is open read-only; use MapStore.open(..., '
                           f'writable=True)')
