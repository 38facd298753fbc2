"""MapStore operations that publish or restructure the map: save, save-as, reindex."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict

import numpy as np

from vpr_ros.mapstore import index as idx
from vpr_ros.mapstore import persist
from vpr_ros.mapstore import places as pl
from vpr_ros.mapstore.manifest import MapError

log = logging.getLogger(__name__)


class StoreSaveMixin:
    """Mixed into MapStore; relies on its private state and lock."""

    def _all_descriptors(self):
        """The saved rows read with pread (never the memory map: see check_files) + pending."""
        self.check_files()
        saved = self._saved_rows() if self.num_saved else self._v.descriptors
        if not self._pending_desc:
            return saved
        return np.concatenate([saved[0:self.num_saved], *self._pending_desc]).astype(np.float32)

    def reindex(self, index: str = 'auto') -> str:
        """Rebuild the search index (``'auto'``, ``'Flat'``, ``'HNSW32'``, ``'IVF256,PQ32'``...).

        Takes effect for searches at once; persisted by the next ``save()``. Returns the type.
        """
        self._require_writable()
        with self._lock:
            itype = idx.choose_index(index, self.num_places, self.dim)
            self._index = idx.build_index(itype, self._all_descriptors(), self.dim)
            self._itype, self._index_spec, self._index_dirty = itype, index, True
            return itype

    def save(self, path=None) -> str:
        """Publish pending changes as a new version atomically; returns the version string.

        With ``path`` (another directory, which must not exist or be empty) a complete copy
        of the current map is written there instead and this store keeps its own path.
        Nothing changes on disk when there is nothing new. On failure the previous version
        stays current and the pending changes stay in memory.
        """
        self._require_writable()
        with self._lock:
            self.check_files()  # a damaged served version is never copied into a new one
            if path is not None and Path(path).resolve() != self.path.resolve():
                return self._save_copy(Path(path))
            spec = self._index_spec
            target = idx.choose_index(spec, self.num_places, self.dim)
            if not self.dirty and target == self._itype and self._index is not None:
                return self.version
            rebuild = None
            if self._index is None or target != self._itype:
                rebuild = self._builder(spec, target)
            m = dict(self._v.manifest)
            m.update(num_places=self.num_places, version_counter=m['version_counter'] + 1,
                     index_spec=spec)
            pend = np.concatenate(self._pending_desc) if self._pending_desc else None
            requests = [(k, ids, skipped) for k, (ids, skipped) in
                        self._pending_requests.items()]
            new_m, index = persist.write_version(self.path, self._v, m, pend,
                                                 self._pending_places, self._index,
                                                 rebuild or self._itype, requests)
            self._index, self._itype = index, new_m['index_type']
            self._switch_to(new_m)
            return self.version

    def discard_pending(self) -> None:
        """Drop the unsaved places and request records (the live index, which holds them, is
        rebuilt on the next search): an add whose save failed leaves nothing behind."""
        self._require_writable()
        with self._lock:
            if self._pending_places or self._pending_requests:
                self._pending_desc, self._pending_geo, self._pending_places = [], [], []
                self._pending_requests = {}
                self._index = None

    def _builder(self, spec: str, target: str):
        """Index factory for save(): the target type, or Flat when it cannot be trained."""
        def build(desc):
            try:
                return target, idx.build_index(target, desc, self.dim)
            except MapError as exc:
                log.warning('%s: index %s not built (%s); using Flat', self.path, target, exc)
                return 'Flat', idx.build_index('Flat', desc, self.dim)
        return build

    def _switch_to(self, m: Dict) -> None:
        dpath = self.path / m['files']['descriptors']['name']
        desc = np.load(dpath, mmap_mode='r' if m['num_places'] else None, allow_pickle=False)
        con = pl.open_readonly(self.path / m['files']['places']['name'])
        geo = np.concatenate([self._v.geo, *self._pending_geo]) if self._pending_geo \
            else self._v.geo
        old = self._v
        self._v = persist.Version(m, desc, con, geo, self._index,
                                  persist.file_identity(self.path, m))
        self._pending_desc, self._pending_geo, self._pending_places = [], [], []
        self._pending_requests = {}
        self._index_dirty = False
        self._manifest_stat = self._stat()
        old.con.close()

    def _save_copy(self, root: Path) -> str:
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise MapError(f'cannot save a copy to {root}: it exists and is not empty')
        root.mkdir(parents=True, exist_ok=True)
        ids = np.arange(self.num_places)
        m = dict(self._v.manifest)
        m.update(num_places=self.num_places, version_counter=1, files={})
        index = self._index if self._index is not None else self._itype
        m, _ = persist.write_version(root, None, m, self.descriptors_of(ids),
                                     self.get_places(ids), index,
                                     self._builder(self._index_spec, self._itype)
                                     if self._index is None else self._itype)
        return m['version']
