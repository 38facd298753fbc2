"""Map sources: each yields ``SourceItem``s (an image path or RGB array plus its PlaceRecord).

* ``vg_source``: VG benchmark folders (``database/``, optionally ``queries/``);
* ``DatasetSource``: raw MSLS or GSV-Cities folders (vpr_ros.io.datasets);
* ``manifest_source``: a CSV or JSON list of image paths with x/y[/yaw] or lat/lon;
* ``BagSource`` (vpr_ros.mapstore.bag_source): keyframes of a rosbag.

Items come in a deterministic order so an interrupted build can resume by item index.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Iterator, List, Optional, Union

import numpy as np

from vpr_ros.geo import heading_to_yaw as geo_heading_to_yaw, MapOrigin
from vpr_ros.mapstore.places import PlaceRecord

log = logging.getLogger(__name__)


@dataclasses.dataclass
class SourceItem:
    image: Union[str, np.ndarray]   # file path (decoded lazily) or RGB uint8 (H,W,3)
    place: PlaceRecord


class SourceError(ValueError):
    """A source that cannot be read; the message says what is wrong and how to fix it."""


def heading_to_yaw(heading_deg: float) -> float:
    """Compass heading (degrees clockwise from north) -> REP 103 yaw (radians CCW from east)."""
    if heading_deg is None or not math.isfinite(heading_deg):
        return 0.0
    return geo_heading_to_yaw(heading_deg)


class Source:
    """Base: ``origin`` (MapOrigin or None) is known once the items are listed."""

    origin: Optional[MapOrigin] = None
    warnings: int = 0
    total: Optional[int] = None   # items it will yield, when known beforehand (progress bars)

    def __iter__(self) -> Iterator[SourceItem]:
        raise NotImplementedError


class VGSource(Source):
    """VG-layout folder: UTM names -> map frame anchored at ``origin`` or the first image."""

    def __init__(self, folder, origin: Optional[MapOrigin] = None,
                 subsets=('database',)):
        from vpr_ros.io.vg import list_vg_folder, vg_origin, vg_xy
        root = Path(folder)
        if not root.is_dir():
            raise SourceError(f'VG folder {root} does not exist')
        dirs = [root / s for s in subsets if (root / s).is_dir()] or [root]
        self.records = [r for d in dirs for r in list_vg_folder(d)]
        self.total = len(self.records)
        self.origin = vg_origin(self.records, origin)
        self._xy = vg_xy(self.records, self.origin)   # any number of UTM zones (vpr_ros.geo)
        from vpr_ros.io.camera_file import read_camera_file
        self.camera = read_camera_file(root, root.parent)  # intrinsics (vpr-ros world writes it)

    def __iter__(self):
        for r, (x, y) in zip(self.records, self._xy.tolist()):
            lat, lon = r.lat, r.lon
            if not (math.isfinite(lat) and math.isfinite(lon)) and self.origin is not None:
                lat, lon = self.origin.xy_to_latlon([[x, y]])[0]
            sub = Path(r.path).parent.name
            yield SourceItem(r.path, PlaceRecord(
                x=x, y=y, yaw=heading_to_yaw(r.heading), lat=float(lat), lon=float(lon),
                source=f'vg:{sub}', note=' '.join(s for s in (r.timestamp, r.note) if s)))


class DatasetSource(Source):
    """A dataset read by vpr_ros.io.datasets (``layout`` msls | gsv-cities | auto): its rows,
    already in the frame of ``origin`` (default: the reader's, at the first image)."""

    def __init__(self, path, layout: str = 'auto', origin: Optional[MapOrigin] = None,
                 subsets=('database',)):
        from vpr_ros.io.datasets import detect_layout, read_dataset
        if not Path(path).exists():
            raise SourceError(f'dataset folder {path} does not exist')
        self.layout = detect_layout(path) if layout == 'auto' else layout
        try:
            self.rows = read_dataset(path, self.layout, origin, subsets)
        except (FileNotFoundError, ValueError) as exc:
            raise SourceError(str(exc)) from None
        self.origin = self.rows.origin

    def __iter__(self):
        for r in self.rows:   # the store's yaw is NOT NULL: unknown headings become 0
            yaw = r.yaw if math.isfinite(r.yaw) else 0.0
            sub = Path(r.path).parent.parent.name if self.layout == 'msls' else \
                Path(r.path).parent.name
            yield SourceItem(r.path, PlaceRecord(x=r.x, y=r.y, yaw=yaw, lat=r.lat, lon=r.lon,
                                                 source=f'{self.layout}:{sub}',
                                                 note=r.condition))


def _num(row: dict, key: str, default=math.nan) -> float:
    v = row.get(key)
    if v is None or v == '':
        return default
    try:
        return float(v)
    except (TypeError, ValueError):
        raise SourceError(f'column {key!r}: {v!r} is not a number') from None


class ManifestSource(Source):
    """CSV/JSON manifest rows: ``image`` (or ``path``) relative to the manifest, and x, y
    (metres) or lat, lon; optional z, yaw (rad) or yaw_deg / heading_deg, robot_id,
    session, stamp, note. JSON is a list of rows or {"origin": {...}, "images": [...]}."""

    def __init__(self, path, origin: Optional[MapOrigin] = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f'manifest {self.path} does not exist')
        self.rows = self._read()
        self.total = len(self.rows)
        if not self.rows:
            raise SourceError(f'manifest {self.path} lists no images')
        cols = set().union(*(r.keys() for r in self.rows))
        if not cols & {'image', 'path'}:
            raise SourceError(f'{self.path}: needs an "image" (or "path") column; has '
                              f'{sorted(cols)}')
        self.has_xy = {'x', 'y'} <= cols
        if not self.has_xy and not {'lat', 'lon'} <= cols:
            raise SourceError(f'{self.path}: needs x,y or lat,lon columns; has {sorted(cols)}')
        self.origin = origin or self.origin
        if not self.has_xy and self.origin is None:
            r0 = self.rows[0]
            self.origin = MapOrigin.from_latlon(_num(r0, 'lat'), _num(r0, 'lon'))

    def _read(self) -> List[dict]:
        text = self.path.read_text()
        if self.path.suffix.lower() == '.json':
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise SourceError(f'{self.path}: invalid JSON ({exc})') from None
            if isinstance(data, dict):
                if data.get('origin'):
                    o = data['origin']
                    self.origin = (MapOrigin.from_latlon(o['lat'], o['lon']) if 'lat' in o
                                   else MapOrigin(**o))
                data = data.get('images', [])
            if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                raise SourceError(f'{self.path}: JSON must be a list of objects or '
                                  f'{{"images": [...]}}')
            return data
        return list(csv.DictReader(text.splitlines()))

    def __iter__(self):
        base = self.path.parent
        for i, row in enumerate(self.rows):
            name = row.get('image') or row.get('path')
            if not name:
                raise SourceError(f'{self.path}: row {i} has no image path')
            lat, lon = _num(row, 'lat'), _num(row, 'lon')
            if self.has_xy and math.isfinite(_num(row, 'x')):
                x, y = _num(row, 'x'), _num(row, 'y')
            elif math.isfinite(lat) and math.isfinite(lon) and self.origin is not None:
                x, y = self.origin.latlon_to_xy(lat, lon)[0]
            else:
                raise SourceError(f'{self.path}: row {i} ({name}) has neither x,y nor lat,lon')
            if 'yaw' in row and row['yaw'] not in ('', None):
                yaw = _num(row, 'yaw')
            elif row.get('yaw_deg') not in ('', None):
                yaw = math.radians(_num(row, 'yaw_deg'))
            else:
                yaw = heading_to_yaw(_num(row, 'heading_deg'))
            yield SourceItem(str(base / name), PlaceRecord(
                x=float(x), y=float(y), z=_num(row, 'z', 0.0), yaw=yaw, lat=lat, lon=lon,
                source=f'manifest:{self.path.name}', robot_id=str(row.get('robot_id') or ''),
                session=str(row.get('session') or ''), stamp=_num(row, 'stamp', 0.0),
                note=str(row.get('note') or '')))
