"""Training/evaluation datasets from GSV-Cities folders and VG-layout folders.

Both readers return ``PlaceRow`` lists; ``PlaceDataset`` wraps them for torch. Places come from
the GSV-Cities ``place_id`` (made unique across cities) or, for VG folders, from the ``p<id>``
pano field that vpr_ros.world writes, else from a UTM grid of ``cell_m`` metres.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from vpr_ros.geo import MapOrigin
from vpr_ros.imaging import read_image_file
from vpr_ros.io.vg import list_vg_folder


@dataclasses.dataclass
class PlaceRow:
    """One image: map-frame x, y (m, REP 103), yaw (rad, CCW from east), WGS84 lat/lon."""

    path: str
    place_id: int
    x: float
    y: float
    yaw: float
    lat: float
    lon: float
    condition: str = ''


def _yaw_from_heading(deg: float) -> float:
    return math.nan if math.isnan(deg) else math.radians(90.0 - deg)


def _origin_near(folder: Path) -> Optional[MapOrigin]:
    """The origin recorded in a world.json next to or above ``folder`` (vpr_ros.world output)."""
    for d in [folder, *folder.parents][:4]:
        meta = d / 'world.json'
        if meta.is_file():
            m = json.loads(meta.read_text())
            return MapOrigin.from_latlon(m['origin_lat'], m['origin_lon'])
    return None


def read_gsv_cities(root, cities: Optional[Sequence[str]] = None,
                    origin: Optional[MapOrigin] = None) -> List[PlaceRow]:
    """Rows of ``root/Dataframes/<City>.csv`` with images in ``root/Images/<City>/``.

    Place ids are renumbered 0..P-1 over (city, place_id) in file order; x/y come from the
    CSV's extra columns (vpr_ros.world output) unless ``origin`` is given, else from lat/lon via
    ``origin`` (default: world.json, or the first image of each city).
    """
    root = Path(root)
    frames = sorted((root / 'Dataframes').glob('*.csv'))
    if cities:
        frames = [f for f in frames if f.stem in set(cities)]
    if not frames:
        raise FileNotFoundError(f'no Dataframes/*.csv under {root}')
    explicit = origin is not None
    origin = origin or _origin_near(root)
    ids: Dict[tuple, int] = {}
    rows: List[PlaceRow] = []
    for csv_path in frames:
        city = csv_path.stem
        with open(csv_path, newline='') as f:
            table = list(csv.DictReader(f))
        city_origin = origin or (MapOrigin.from_latlon(float(table[0]['lat']),
                                                       float(table[0]['lon'])) if table else None)
        for r in table:
            lat, lon = float(r['lat']), float(r['lon'])
            name = (f'{r["city_id"]}_{int(r["place_id"]):07d}_{int(r["year"]):04d}_'
                    f'{int(r["month"]):02d}_{int(r["northdeg"]):03d}_{r["lat"]}_{r["lon"]}_'
                    f'{r["panoid"]}.jpg')
            path = root / 'Images' / city / name
            if not path.is_file():
                raise FileNotFoundError(f'{csv_path}: image {path} is missing')
            if r.get('x') not in (None, '') and not explicit:  # written in the world's frame
                x, y = float(r['x']), float(r['y'])
            else:
                x, y = city_origin.latlon_to_xy(lat, lon)[0]
            yaw = float(r['yaw']) if r.get('yaw') not in (None, '') else \
                _yaw_from_heading(float(r['northdeg']))
            pid = ids.setdefault((city, int(r['place_id'])), len(ids))
            rows.append(PlaceRow(str(path), pid, float(x), float(y), yaw, lat, lon,
                                 r.get('condition', '')))
    return rows


def read_vg(folder, cell_m: float = 25.0, origin: Optional[MapOrigin] = None,
            use_pano_places: bool = True) -> List[PlaceRow]:
    """Rows of a VG-layout folder (e.g. ``out/test/database``; recursive, sorted by path).

    Place ids: from ``p<id>`` pano fields when every image has one (and ``use_pano_places``),
    else the UTM grid cell of ``cell_m`` metres, renumbered 0..P-1 in order of appearance.
    x/y are UTM minus ``origin`` (default: world.json, else the first image's position).
    """
    folder = Path(folder)
    recs = list_vg_folder(folder)
    origin = origin or _origin_near(folder)
    if origin is None:
        r0 = recs[0]
        origin = MapOrigin(r0.utm_e, r0.utm_n, r0.zone_number, r0.zone_letter)
    pano = use_pano_places and all(r.pano_id[:1] == 'p' and r.pano_id[1:].isdigit()
                                   for r in recs)
    ids: Dict[tuple, int] = {}
    rows = []
    for r in recs:
        key = (int(r.pano_id[1:]),) if pano else (math.floor(r.utm_e / cell_m),
                                                  math.floor(r.utm_n / cell_m))
        pid = ids.setdefault(key, len(ids))
        rows.append(PlaceRow(r.path, pid, r.utm_e - origin.easting, r.utm_n - origin.northing,
                             _yaw_from_heading(r.heading), r.lat, r.lon, r.note))
    return rows


def rows_by_place(rows: Sequence[PlaceRow]) -> Dict[int, List[int]]:
    """place id -> indices of its rows (for per-place batch samplers)."""
    out: Dict[int, List[int]] = {}
    for i, r in enumerate(rows):
        out.setdefault(r.place_id, []).append(i)
    return out


def _torch_dataset_base():
    try:
        from torch.utils.data import Dataset
        return Dataset
    except ImportError:  # readers stay usable without torch
        return object


class PlaceDataset(_torch_dataset_base()):
    """torch Dataset of PlaceRows: item = (image, place_id, index).

    The image is uint8 RGB (H, W, 3) as numpy, or ``transform(image)`` when a transform is given.
    """

    def __init__(self, rows: Sequence[PlaceRow], transform: Optional[Callable] = None):
        self.rows = list(rows)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int):
        img = read_image_file(self.rows[index].path)
        if self.transform is not None:
            img = self.transform(img)
        return img, self.rows[index].place_id, index

    def positions(self) -> np.ndarray:
        """(N, 2) map-frame x, y of all rows."""
        return np.array([[r.x, r.y] for r in self.rows], dtype=np.float64).reshape(-1, 2)

    def place_ids(self) -> np.ndarray:
        """(N,) place id of every row."""
        return np.array([r.place_id for r in self.rows], dtype=np.int64)
