"""The GSV-Cities layout (amaralibey/gsv-cities): ``Dataframes/<City>.csv`` with columns
place_id, year, month, northdeg, city_id, lat, lon, panoid, and images
``Images/<City>/<city_id>_<place_id:07d>_<year:04d>_<month:02d>_<northdeg:03d>_<lat>_<lon>_
<panoid>.jpg`` (lat/lon as written in the CSV). vpr_ros.world writes the same layout plus
optional x, y, yaw and condition columns in its own map frame.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from vpr_ros.geo import heading_to_yaw, MapOrigin
from vpr_ros.io.place_rows import origin_near, PlaceRow, PlaceRows

COLUMNS = ('place_id', 'year', 'month', 'northdeg', 'city_id', 'lat', 'lon', 'panoid')


def gsv_image_name(r: Mapping[str, str]) -> str:
    """The image file name of one Dataframes row (strings as read from the CSV)."""
    return (f'{r["city_id"]}_{int(r["place_id"]):07d}_{int(r["year"]):04d}_'
            f'{int(r["month"]):02d}_{int(float(r["northdeg"])):03d}_{r["lat"]}_{r["lon"]}_'
            f'{r["panoid"]}.jpg')


def gsv_cities(root) -> List[Path]:
    """The Dataframes CSVs of a GSV-Cities root, sorted by city."""
    frames = sorted((Path(root) / 'Dataframes').glob('*.csv'))
    if not frames:
        raise FileNotFoundError(f'no Dataframes/*.csv under {root} (GSV-Cities layout: '
                                'Dataframes/<City>.csv and Images/<City>/*.jpg)')
    return frames


def _latlon_of(csv_path: Path):
    with open(csv_path, newline='') as f:
        table = [(r['lat'], r['lon']) for r in csv.DictReader(f)]
    return [float(a) for a, _ in table], [float(o) for _, o in table]


def read_gsv_cities(root, cities: Optional[Sequence[str]] = None,
                    origin: Optional[MapOrigin] = None,
                    check_images: bool = True) -> PlaceRows:
    """Rows of ``root/Dataframes/<City>.csv`` with images in ``root/Images/<City>/``.

    Place ids are renumbered 0..P-1 over (city, place_id) in file order. x/y: the CSV's x, y
    columns (vpr_ros.world output, in its world.json frame) unless ``origin`` is given, else
    lat/lon in the frame of ``origin`` (default: world.json, else the first image of the first
    city, with a slot for each far UTM zone: vpr_ros.geo). Rows are read one city at a time;
    the returned list's ``origin`` is the frame's.
    """
    root = Path(root)
    frames = gsv_cities(root)
    if cities:
        frames = [f for f in frames if f.stem in set(cities)]
        if not frames:
            raise FileNotFoundError(f'none of the cities {list(cities)} under {root}/Dataframes')
    explicit = origin is not None
    origin = origin or origin_near(root)
    if not explicit:
        lat, lon = [], []
        for csv_path in frames:
            a, o = _latlon_of(csv_path)
            lat, lon = lat + a, lon + o
        if origin is None and lat:
            origin = MapOrigin.from_latlon(lat[0], lon[0])
        origin = origin.with_frames_latlon(lat, lon) if origin is not None else None
        del lat, lon
    ids: Dict[tuple, int] = {}
    rows = PlaceRows(origin=origin)
    for csv_path in frames:
        city = csv_path.stem
        with open(csv_path, newline='') as f:
            table = list(csv.DictReader(f))
        missing = [c for c in COLUMNS if table and c not in table[0]]
        if missing:
            raise ValueError(f'{csv_path}: GSV-Cities columns {missing} are missing')
        if not table:
            continue
        own_xy = not explicit and table[0].get('x') not in (None, '')
        xy = None if own_xy else origin.latlon_to_xy([float(r['lat']) for r in table],
                                                     [float(r['lon']) for r in table])
        for i, r in enumerate(table):
            path = root / 'Images' / city / gsv_image_name(r)
            if check_images and not path.is_file():
                raise FileNotFoundError(f'{csv_path}: image {path} is missing')
            x, y = (float(r['x']), float(r['y'])) if own_xy else xy[i]
            yaw = float(r['yaw']) if r.get('yaw') not in (None, '') else \
                heading_to_yaw(float(r['northdeg']))
            pid = ids.setdefault((city, int(r['place_id'])), len(ids))
            rows.append(PlaceRow(str(path), pid, float(x), float(y), yaw, float(r['lat']),
                                 float(r['lon']), r.get('condition', '')))
    return rows
