"""The VG benchmark file-name layout (gmberton/VPR-methods-evaluation).

``@utm_e@utm_n@zone_number@zone_letter@lat@lon@pano_id@tile@heading@pitch@roll@height@timestamp@note@.jpg``
with ``database/`` and ``queries/`` folders per split. Only UTM east/north are required.
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import List

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
