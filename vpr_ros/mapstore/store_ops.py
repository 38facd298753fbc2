"""MapStore operations that change or summarise its content: add, merge, stats."""
from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from vpr_ros.mapstore import index as idx
from vpr_ros.mapstore import places as pl
from vpr_ros.mapstore.dedup import DedupConfig, dedup_mask
from vpr_ros.mapstore.manifest import MapError
from vpr_ros.mapstore.places import PlaceRecord
from vpr_ros.validation import check_position

log = logging.getLogger(__name__)


class StoreOpsMixin:
    """Mixed into MapStore; relies on its private state and lock."""

    def add(self, descriptors, places: Sequence[PlaceRecord], dedup: Optional[DedupConfig] = None,
            encoder: Optional[str] = None, request_id: str = '') -> Tuple[List[int], int]:
        """Append places (in memory until ``save()``); all-or-nothing.

        Descriptors (N,dim) are validated (shape, finite, non-zero) and L2-normalised. With
        ``dedup`` places too similar to existing ones are skipped. Returns (new ids, skipped).
        A ``request_id`` already answered (see ``request_answer``) adds nothing and returns
        the first answer; a new one is recorded with the places (persisted by ``save()``).
        """
        self._require_writable()
        if request_id:
            with self._lock:
                answer = self.request_answer(request_id)
                if answer is not None:
                    return answer
                ids, skipped = self.add(descriptors, places, dedup, encoder)
                self._pending_requests[str(request_id)] = (list(ids), int(skipped))
                return ids, skipped
        self.check_files()
        if encoder is not None and encoder != self.encoder:
            raise MapError(f'descriptors from encoder {encoder!r} cannot go into a map built by '
                           f'{self.encoder!r}')
        d = np.asarray(descriptors, dtype=np.float32)
        if d.ndim == 1 and len(places) == 1:
            d = d[None]
        if d.ndim != 2 or d.shape[1] != self.dim:
            raise MapError(f'descriptors must be (N, {self.dim}) for {self.encoder!r}, got '
                           f'{d.shape}')
        if d.shape[0] != len(places):
            raise MapError(f'{d.shape[0]} descriptors but {len(places)} places')
        if not np.all(np.isfinite(d)):
            bad = np.flatnonzero(~np.isfinite(d).all(axis=1))
            raise MapError(f'descriptors contain NaN or infinite values (rows {bad[:10]})')
        norms = np.linalg.norm(d, axis=1)
        if np.any(norms < 1e-12):
            raise MapError(f'zero descriptors at rows {np.flatnonzero(norms < 1e-12)[:10]}')
        for i, p in enumerate(places):
            try:
                p.validate(f'place {i}')
                # beyond this, distances overflow and the matcher's covariance turns NaN
                check_position(p.x, p.y, p.z, f'place {i}: ')
            except ValueError as exc:
                raise MapError(str(exc)) from None
        d = (d / norms[:, None]).astype(self.dtype).astype(np.float32)
        geo = np.array([[p.x, p.y, p.z, p.yaw] for p in places], np.float64).reshape(-1, 4)
        with self._lock:
            keep = np.ones(len(places), bool)
            if dedup is not None and len(places):
                keep = dedup_mask(dedup, geo, d, self._geo(np.arange(self.num_places)),
                                  self.descriptors_of)
            d, geo = d[keep], geo[keep]
            kept = [p for p, k in zip(places, keep) if k]
            if not kept:
                return [], int((~keep).sum())
            start = self.num_places
            self._grow_index(d, start + len(kept))
            records = [pl.PlaceRecord(**{**p.__dict__, 'id': start + j})
                       for j, p in enumerate(kept)]
            self._pending_desc.append(d.astype(self.dtype))
            self._pending_geo.append(geo)
            self._pending_places.extend(records)
            return [r.id for r in records], int((~keep).sum())

    def request_answer(self, request_id: str) -> Optional[Tuple[List[int], int]]:
        """(place ids, skipped) of the add that carried ``request_id``, or None. The last
        places.MAX_REQUESTS keys are kept, in the map (they survive a restart)."""
        with self._lock:
            if request_id in self._pending_requests:
                ids, skipped = self._pending_requests[request_id]
                return list(ids), skipped
            try:
                return pl.fetch_request(self._v.con, request_id)
            except sqlite3.Error as exc:
                raise MapError(f'{self.path}: places file unreadable ({exc})') from None

    def _grow_index(self, d: np.ndarray, n_after: int) -> None:
        """Add rows to the live index while its type stays right for the map size; otherwise
        drop it (rebuilt by save() from the published file, or by the next search)."""
        target = idx.choose_index(self._index_spec, n_after, self.dim)
        if self._index is not None and target == self._itype and self._index.is_trained:
            self._index.add(d)
        else:
            self._index = None
        self._index_dirty = True

    def merge(self, other_path, dedup=None) -> Tuple[int, int]:
        """Add every place of another map (same encoder, dim and frame) to this one.

        Positions are moved into this map's frame when both maps have a UTM origin. Refused
        (MapError, nothing changed) for another encoder/dim/frame. Returns (added, skipped);
        persisted by the next ``save()``.
        """
        self._require_writable()
        if Path(other_path).is_dir() and os.path.samefile(other_path, self.path):
            raise MapError(f'cannot merge {other_path} into itself: it is the served map '
                           f'{self.path}; nothing changed')
        other = type(self).open(other_path)  # a MapStore
        try:
            if other.encoder != self.encoder or other.dim != self.dim:
                raise MapError(f'cannot merge {other_path}: it was built by {other.encoder!r} '
                               f'({other.dim}-d), this map by {self.encoder!r} ({self.dim}-d)')
            fps = [(m.manifest.get('encoder_source') or {}).get('weights_fingerprint', '')
                   for m in (other, self)]
            if all(fps) and fps[0] != fps[1]:
                raise MapError(f'cannot merge {other_path}: built with other weights of '
                               f'{self.encoder!r} (fingerprint {fps[0][:16]}..., this map '
                               f'{fps[1][:16]}...): their descriptors are not comparable')
            if other.frame_id != self.frame_id:
                raise MapError(f'cannot merge {other_path}: frame {other.frame_id!r} is not '
                               f'{self.frame_id!r}')
            if self.map_id and other.map_id == self.map_id and dedup is None:
                raise MapError(f'cannot merge {other_path} without deduplication: it is a copy '
                               f'of this map (map_id {self.map_id}) and every shared place '
                               'would be doubled; merge with deduplicate set')
            if (other.origin is None) != (self.origin is None):
                raise MapError(f'cannot merge {other_path}: only one of the maps has a UTM '
                               f'origin, so their frames cannot be aligned')
            ids = np.arange(other.num_places)
            places = other.get_places(ids)
            if self.origin is not None and other.origin != self.origin and len(places):
                xy = np.array([[p.x, p.y] for p in places])
                xy = _origin(self.origin).latlon_to_xy(
                    *_origin(other.origin).xy_to_latlon(xy).T)
                for p, (x, y) in zip(places, xy):
                    p.x, p.y = float(x), float(y)
            added, skipped = self.add(other.descriptors_of(ids), places, dedup=dedup)
            return len(added), skipped
        finally:
            other.close()

    def stats(self) -> Dict:
        """Place counts per robot_id and per session (and per robot/session with time span)."""
        from vpr_ros.mapstore.places import stats_from_rows
        with self._lock:
            rows = list(pl.group_counts(self._v.con))
            for p in self._pending_places:
                rows.append((p.robot_id, p.session, 1, p.stamp, p.stamp))
            out = stats_from_rows(rows, self.num_places)
            out.update(encoder=self.encoder, dim=self.dim, index_type=self.index_type,
                       version=self.version, unsaved_places=len(self._pending_places))
            return out


def _origin(d):
    from vpr_ros.geo import MapOrigin
    return MapOrigin(float(d['easting']), float(d['northing']), int(d['zone_number']),
                     str(d['zone_letter']), d.get('zones', ()))
