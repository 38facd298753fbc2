"""The raw Mapillary Street-Level Sequences layout (mapillary/mapillary_sls):
``train_val/<city>/{query,database}/`` with ``postprocessed.csv`` (key, easting, northing,
unique_cluster, control_panel, night, view_direction), ``raw.csv`` (key, lon, lat, ca =
compass angle, captured_at, pano) and ``images/<key>.jpg``. The UTM zone is not in the files:
it comes from each image's lat/lon, so a selection of several cities (any zones) is placed by
vpr_ros.geo, with the CSVs' easting/northing as the MSLS protocol uses them.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import utm

from vpr_ros.geo import heading_to_yaw, latlon_zones, MapOrigin
from vpr_ros.io.place_rows import PlaceRow, PlaceRows

SUBSETS = ('database', 'query')


def is_msls_subset(folder) -> bool:
    """Whether ``folder`` is one MSLS city subset (postprocessed.csv or raw.csv + images/)."""
    f = Path(folder)
    return (f / 'images').is_dir() and ((f / 'postprocessed.csv').is_file()
                                        or (f / 'raw.csv').is_file())


def msls_subsets(root, cities: Optional[Sequence[str]] = None,
                 subsets: Sequence[str] = ('database',)) -> List[Path]:
    """The subset folders under ``root``: the MSLS root, its train_val/, one city or one
    subset folder; ``cities`` filters by city folder name. Sorted by city then subset."""
    root = Path(root)
    if is_msls_subset(root):
        return [root]
    base = root / 'train_val' if (root / 'train_val').is_dir() else root
    city_dirs = [base] if any((base / s).is_dir() for s in SUBSETS) else \
        sorted(d for d in base.iterdir() if d.is_dir()) if base.is_dir() else []
    if cities:
        city_dirs = [d for d in city_dirs if d.name in set(cities)]
    out = [d / s for d in city_dirs for s in subsets if is_msls_subset(d / s)]
    if not out:
        raise FileNotFoundError(f'no MSLS {"/".join(subsets)} folders under {root} (layout: '
                                'train_val/<city>/{query,database}/postprocessed.csv, raw.csv, '
                                'images/<key>.jpg)')
    return out


def _table(path: Path) -> Dict[str, dict]:
    if not path.is_file():
        return {}
    with open(path, newline='') as f:
        return {r['key']: r for r in csv.DictReader(f) if r.get('key')}


def _num(row: dict, key: str) -> float:
    v = row.get(key)
    return float(v) if v not in (None, '') else math.nan


def _truthy(v) -> bool:
    return str(v).strip().lower() in ('1', 'true', 'yes')


def _subset_table(sub: Path, skip_panos: bool):
    """(keys, lat, lon, easting, northing, zone, letter, post, raw) of one subset folder."""
    post, raw = _table(sub / 'postprocessed.csv'), _table(sub / 'raw.csv')
    keys = sorted(set(post) | set(raw))
    keys = [k for k in keys if not (skip_panos and _truthy(raw.get(k, {}).get('pano')))]
    keys = [k for k in keys if (sub / 'images' / f'{k}.jpg').is_file()]
    lat = np.array([_num(raw.get(k, {}), 'lat') for k in keys])
    lon = np.array([_num(raw.get(k, {}), 'lon') for k in keys])
    e = np.array([_num(post.get(k, {}), 'easting') for k in keys])
    n = np.array([_num(post.get(k, {}), 'northing') for k in keys])
    ok = np.isfinite(lat) & np.isfinite(lon)
    zone = np.zeros(len(keys), np.int64)
    zone[ok] = latlon_zones(lat[ok], lon[ok])
    letter = [utm.latitude_to_zone_letter(a) if good else '' for a, good in zip(lat, ok)]
    for i in np.flatnonzero(~np.isfinite(e) & ok):
        e[i], n[i] = utm.from_latlon(lat[i], lon[i], force_zone_number=int(zone[i]))[:2]
    if not np.isfinite(e).all():
        raise ValueError(f'{sub}: some images have neither easting/northing in '
                         'postprocessed.csv nor lat/lon in raw.csv')
    return keys, lat, lon, e, n, zone, letter, post, raw


def read_msls(root, cities: Optional[Sequence[str]] = None,
              subsets: Sequence[str] = ('database',), origin: Optional[MapOrigin] = None,
              cell_m: float = 25.0, skip_panos: bool = True) -> PlaceRows:
    """Rows of the MSLS subsets under ``root`` (see msls_subsets), in key order per subset.

    x/y: each image's UTM easting/northing (postprocessed.csv, else from raw.csv lat/lon) in
    the frame of ``origin`` (default: at the first image's lat/lon, with a slot for each far
    UTM zone: vpr_ros.geo); the returned list's ``origin`` is the frame's. yaw from the compass
    angle ``ca``; condition 'night' or 'day'; place ids: the ``cell_m`` grid cell per city
    (renumbered 0..P-1); panoramas skipped unless asked.
    """
    tables = [(sub, _subset_table(sub, skip_panos))
              for sub in msls_subsets(root, cities, subsets)]
    tables = [(sub, t) for sub, t in tables if t[0]]
    if not tables:
        raise FileNotFoundError(f'no MSLS images found under {root}')
    if origin is None:
        _, (_, lat, lon, e, n, zone, letter, _, _) = tables[0]
        origin = MapOrigin.from_latlon(lat[0], lon[0]) if zone[0] else \
            MapOrigin(e[0], n[0], 0, '')
        if origin.zone_number:
            cat = [np.concatenate([t[i] for _, t in tables]) for i in (3, 4, 5)]
            origin = origin.with_frames(*cat, [x for _, t in tables for x in t[6]])
    ids: Dict[tuple, int] = {}
    rows = PlaceRows(origin=origin)
    for sub, (keys, lat, lon, e, n, zone, letter, post, raw) in tables:
        xy = origin.utm_to_xy(e, n, zone, letter) if origin.zone_number else \
            np.stack([e - origin.easting, n - origin.northing], -1)
        city = sub.parent.name
        for i, k in enumerate(keys):
            pid = ids.setdefault((city, math.floor(e[i] / cell_m), math.floor(n[i] / cell_m)),
                                 len(ids))
            yaw = heading_to_yaw(_num(raw.get(k, {}), 'ca'))
            cond = 'night' if _truthy(post.get(k, {}).get('night')) else 'day'
            rows.append(PlaceRow(str(sub / 'images' / f'{k}.jpg'), pid, float(xy[i, 0]),
                                 float(xy[i, 1]), yaw, float(lat[i]), float(lon[i]), cond))
    return rows
