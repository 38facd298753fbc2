"""The local features of a map's images: ``<map>/local_features.npz``, optional per map.

One file per map, written whole or not at all (temp name, fsync, rename, fsync of the
directory) and checked on load (zip CRCs, format version, array shapes). It holds, per place id,
at most ``max_keypoints`` keypoints (float32 pixels, uint8 descriptors), the image size and the
camera intrinsics when the map source knew them. Arrays (P places, T keypoints in all):
``header`` (JSON bytes), ``place_ids`` (P,), ``offsets`` (P+1,), ``xy`` (T, 2), ``desc`` (T, D),
``sizes`` (P, 2) width/height, ``intrinsics`` (P, 4) fx, fy, cx, cy (NaN: unknown).
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from vpr_ros.mapstore.manifest import fsync_dir, MapError
from vpr_ros.verification.features import describe, LocalFeatures

FILE = 'local_features.npz'
FORMAT_VERSION = 1
_KEYS = ('header', 'place_ids', 'offsets', 'xy', 'desc', 'sizes', 'intrinsics')


class LocalFeatureError(MapError):
    """A local feature file that cannot be read or does not fit; the message says why."""


def intrinsics_matrix(row) -> Optional[np.ndarray]:
    """(3, 3) K from (fx, fy, cx, cy), None when unknown (NaN)."""
    fx, fy, cx, cy = (float(v) for v in row)
    if not all(np.isfinite([fx, fy, cx, cy])) or fx <= 0 or fy <= 0:
        return None
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


class LocalFeatureWriter:
    """Collects the features of place ids, then ``save(map_dir)`` publishes them at once."""

    def __init__(self, method: str, max_keypoints: int, **header):
        self.header = dict(describe(method, max_keypoints), **header)
        self.rows: Dict[int, tuple] = {}

    def add(self, place_id: int, feats: LocalFeatures, intrinsics=None) -> None:
        """Features of one place (``intrinsics``: fx, fy, cx, cy of its camera, or None)."""
        k = np.full(4, np.nan) if intrinsics is None else np.asarray(intrinsics, np.float64)
        self.rows[int(place_id)] = (feats, k.reshape(4))

    def save(self, map_dir) -> Path:
        """Write ``<map_dir>/local_features.npz`` atomically; returns its path."""
        root = Path(map_dir)
        ids = np.array(sorted(self.rows), np.int64)
        feats = [self.rows[i][0] for i in ids.tolist()]
        counts = np.array([len(f) for f in feats], np.int64)
        width = self.header['descriptor_bytes']
        header = dict(self.header, format_version=FORMAT_VERSION, places=int(len(ids)),
                      keypoints=int(counts.sum()))
        arrays = {
            'header': np.frombuffer(json.dumps(header, sort_keys=True).encode(), np.uint8),
            'place_ids': ids, 'offsets': np.concatenate([[0], np.cumsum(counts)]),
            'xy': np.concatenate([f.xy for f in feats] or [np.zeros((0, 2))]).astype(np.float32),
            'desc': np.concatenate([f.desc for f in feats] or [np.zeros((0, width))]
                                   ).astype(np.uint8).reshape(-1, width),
            'sizes': np.array([f.size for f in feats], np.int32).reshape(-1, 2),
            'intrinsics': np.array([self.rows[i][1] for i in ids.tolist()],
                                   np.float64).reshape(-1, 4)}
        final = root / FILE
        tmp = root / (FILE + '.part')  # not *.tmp: a map save's clean-up removes those
        with open(tmp, 'wb') as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        fsync_dir(root)
        return final


class LocalFeatureStore:
    """The loaded features of one map (read-only); ``None`` from ``load`` when it has none."""

    def __init__(self, path: Path, arrays: Dict[str, np.ndarray], header: Dict):
        self.path, self.header = path, header
        self.method = header['method']
        self.max_keypoints = int(header['max_keypoints'])
        self._ids = arrays['place_ids']
        self._row = {int(p): i for i, p in enumerate(self._ids.tolist())}
        self._off, self._xy, self._desc = arrays['offsets'], arrays['xy'], arrays['desc']
        self._sizes, self._k = arrays['sizes'], arrays['intrinsics']

    @classmethod
    def load(cls, map_dir) -> Optional['LocalFeatureStore']:
        """The features of ``map_dir``; None when the map was built without them."""
        path = Path(map_dir) / FILE
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in _KEYS if k not in z.files]
                if missing:
                    raise LocalFeatureError(f'{path}: no {", ".join(missing)} array(s)')
                arrays = {k: z[k] for k in _KEYS}
            header = json.loads(arrays['header'].tobytes().decode())
        except LocalFeatureError:
            raise
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
            raise LocalFeatureError(f'{path}: unreadable local feature file ({exc}); rebuild '
                                    f'the map or delete the file (verification is then off)') \
                from None
        check(path, arrays, header)
        return cls(path, arrays, header)

    def __len__(self) -> int:
        return int(len(self._ids))

    def __contains__(self, place_id) -> bool:
        return int(place_id) in self._row

    def features(self, place_id: int) -> Optional[LocalFeatures]:
        """The stored features of ``place_id`` (None: the place has none)."""
        i = self._row.get(int(place_id))
        if i is None:
            return None
        a, b = int(self._off[i]), int(self._off[i + 1])
        return LocalFeatures(self._xy[a:b], self._desc[a:b], tuple(self._sizes[i].tolist()))

    def intrinsics(self, place_id: int) -> Optional[np.ndarray]:
        """(3, 3) K of the place's camera, None when unknown."""
        i = self._row.get(int(place_id))
        return None if i is None else intrinsics_matrix(self._k[i])


def check(path, arrays: Dict[str, np.ndarray], header: Dict) -> None:
    """LocalFeatureError when the format version or the array shapes do not fit together."""
    version = header.get('format_version')
    if version != FORMAT_VERSION:
        raise LocalFeatureError(f'{path}: local feature format {version!r}, this vpr_ros reads '
                                f'{FORMAT_VERSION}; rebuild the map\'s features with this '
                                'version (vpr-ros build-map) or delete the file')
    p = len(arrays['place_ids'])
    width = int(header.get('descriptor_bytes', -1))
    t = int(arrays['offsets'][-1]) if len(arrays['offsets']) else -1
    ok = (arrays['offsets'].shape == (p + 1,) and t == len(arrays['xy']) == len(arrays['desc'])
          and arrays['desc'].dtype == np.uint8 and arrays['desc'].shape[1:] == (width,)
          and arrays['xy'].shape[1:] == (2,) and arrays['sizes'].shape == (p, 2)
          and arrays['intrinsics'].shape == (p, 4) and np.all(np.diff(arrays['offsets']) >= 0))
    if not ok or 'method' not in header:
        raise LocalFeatureError(f'{path}: arrays do not fit together ({p} places, offsets '
                                f'{arrays["offsets"].shape}, xy {arrays["xy"].shape}, desc '
                                f'{arrays["desc"].shape}); rebuild the map or delete the file')


def read_header(map_dir) -> Optional[Dict]:
    """Only the header of ``<map_dir>/local_features.npz`` (method, max_keypoints, ...); None
    when the map has no local features. LocalFeatureError when it cannot be read."""
    path = Path(map_dir) / FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(z['header'].tobytes().decode())
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise LocalFeatureError(f'{path}: unreadable local feature file ({exc})') from None
    if header.get('format_version') != FORMAT_VERSION or 'method' not in header:
        raise LocalFeatureError(f'{path}: local feature format {header.get("format_version")!r}'
                                f', this vpr_ros reads {FORMAT_VERSION}')
    return header
