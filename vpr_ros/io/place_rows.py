"""The row every dataset reader returns: one image with its place, map-frame pose and WGS84."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Iterable, Optional

from vpr_ros.geo import MapOrigin


@dataclasses.dataclass(slots=True)
class PlaceRow:
    """One image: map-frame x, y (m, REP 103), yaw (rad, CCW from east), WGS84 lat/lon.

    ``slots``: GSV-Cities has ~530k rows, so a row stays ~150 bytes."""

    path: str
    place_id: int
    x: float
    y: float
    yaw: float
    lat: float
    lon: float
    condition: str = ''


class PlaceRows(list):
    """A reader's rows (a list of PlaceRow) and ``origin``, the MapOrigin of their x, y (with
    the slots of far UTM zones, vpr_ros.geo) or None when they are plain UTM differences."""

    def __init__(self, rows: Iterable[PlaceRow] = (), origin: Optional[MapOrigin] = None):
        super().__init__(rows)
        self.origin = origin


def origin_near(folder: Path) -> Optional[MapOrigin]:
    """The origin recorded in a world.json next to or above ``folder`` (vpr_ros.world output)."""
    for d in [folder, *folder.parents][:4]:
        meta = d / 'world.json'
        if meta.is_file():
            m = json.loads(meta.read_text())
            return MapOrigin.from_latlon(m['origin_lat'], m['origin_lon'])
    return None
