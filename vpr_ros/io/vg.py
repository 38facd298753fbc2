"""The VG benchmark file-name layout (gmberton/VPR-methods-evaluation).

``@utm_e@utm_n@zone_number@zone_letter@lat@lon@pano_id@tile@heading@pitch@roll@height@timestamp@note@.jpg``
with ``database/`` and ``queries/`` folders per split. Only UTM east/north are required.
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

IMAGE_EXTS = ('.jpg', '.jpeg', '.png')


class VGNameError(ValueError):
    """A file name that does not follow the VG layout."""


@dataclasses.dataclass
class VGRecord:
    path: str
    utm_e: float
    utm_n: float
    zone_number: int = 0
    zone_letter: str = ''
    lat: float = math.nan
    lon: float = math.nan
    pano_id: str = ''
    heading: float = math.nan  # degrees clockwise from north, as in the VG layout
    timestamp: str = ''
    note: str = ''


def _num(s: str) -> float:
    return float(s) if s not in ('', None) else math.nan


def parse_vg_name(path: str) -> VGRecord:
    """Parse one VG-layout image path; VGNameError says what is missing."""
    name = os.path.basename(path)
    fields = name.split('@')
    if len(fields) < 4 or fields[0] != '':
        raise VGNameError(f'{name!r} is not a VG-layout name (@utm_e@utm_n@...@.jpg)')
    fields += [''] * (16 - len(fields))
    try:
        return VGRecord(path=str(path), utm_e=float(fields[1]), utm_n=float(fields[2]),
                        zone_number=int(fields[3]) if fields[3].isdigit() else 0,
                        zone_letter=fields[4], lat=_num(fields[5]), lon=_num(fields[6]),
                        pano_id=fields[7], heading=_num(fields[9]), timestamp=fields[13],
                        note=fields[14])
    except ValueError as exc:
        raise VGNameError(f'{name!r}: bad number in VG-layout name ({exc})') from None


def format_vg_name(r: VGRecord, ext: str = '.jpg') -> str:
    """The VG-layout file name of a record (inverse of parse_vg_name)."""
    def f(v, fmt):
        return '' if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)
    zone = str(r.zone_number) if r.zone_number else ''
    return (f'@{r.utm_e:.2f}@{r.utm_n:.2f}@{zone}@{r.zone_letter}@{f(r.lat, ".7f")}'
            f'@{f(r.lon, ".7f")}@{r.pano_id}@@{f(r.heading, ".1f")}@@@@{r.timestamp}'
            f'@{r.note}@{ext}')


def list_vg_folder(folder) -> List[VGRecord]:
    """All VG-layout images under ``folder`` (recursively), sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'VG folder {folder} does not exist')
    paths = sorted(p for p in folder.rglob('*') if p.suffix.lower() in IMAGE_EXTS)
    if not paths:
        raise VGNameError(f'no .jpg/.png images under {folder}')
    return [parse_vg_name(str(p)) for p in paths]


def vg_origin(records: Sequence[VGRecord], origin=None):
    """The MapOrigin of a map of ``records``: ``origin``, else the first record (its UTM zone
    from the name, else its lat/lon), with a slot for every far UTM zone among the records
    (vpr_ros.geo); None when the names carry neither a zone nor lat/lon."""
    from vpr_ros.geo import MapOrigin
    r = records[0]
    if origin is None and r.zone_number and r.zone_letter:
        origin = MapOrigin(r.utm_e, r.utm_n, r.zone_number, r.zone_letter)
    elif origin is None and math.isfinite(r.lat) and math.isfinite(r.lon):
        origin = MapOrigin.from_latlon(r.lat, r.lon)
    zoned = [x for x in records if x.zone_number and x.zone_letter]
    if origin is None or not zoned:
        return origin
    return origin.with_frames([x.utm_e for x in zoned], [x.utm_n for x in zoned],
                              [x.zone_number for x in zoned], [x.zone_letter for x in zoned])


def vg_xy(records: Sequence[VGRecord], origin=None,
          shift: Optional[Sequence[float]] = None) -> np.ndarray:
    """(N, 2) map-frame x, y of VG records: each name's own UTM easting/northing in the local
    frame of its zone (vpr_ros.geo), so any number of zones works and distances within a zone
    are the VG protocol's. Names without a zone whose lat/lon lies in another zone are placed
    by lat/lon; without ``origin`` the UTM values are shifted by ``shift`` (default: the first
    record's)."""
    e = np.array([r.utm_e for r in records], dtype=np.float64)
    n = np.array([r.utm_n for r in records], dtype=np.float64)
    if origin is None:
        s = shift if shift is not None else ((e[0], n[0]) if len(e) else (0.0, 0.0))
        return np.stack([e - s[0], n - s[1]], axis=-1).reshape(-1, 2)
    zn = [r.zone_number if r.zone_letter else 0 for r in records]
    xy = origin.utm_to_xy(e, n, zn, [r.zone_letter for r in records]).reshape(-1, 2)
    nozone = np.array([not z and math.isfinite(r.lat) and math.isfinite(r.lon)
                       for z, r in zip(zn, records)], dtype=bool)
    if nozone.any():
        lat = np.array([r.lat for r in records])[nozone]
        lon = np.array([r.lon for r in records])[nozone]
        from vpr_ros.geo import latlon_zones, zone_delta
        other = zone_delta(latlon_zones(lat, lon), origin.zone_number) != 0
        idx = np.flatnonzero(nozone)[other]
        if len(idx):
            xy[idx] = origin.latlon_to_xy(lat[other], lon[other])
    return xy
